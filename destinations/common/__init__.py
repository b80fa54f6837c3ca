"""What every write-back destination shares: the exactly-once ledger (`ledger`) and the push engine (`push`).

A destination brings a `push.Target` (how a raw hit is checked and encoded, how a batch is sent and what its answer
means, how a batch in an unknown state is read back); the engine does the rest the same way for every vendor.
"""
