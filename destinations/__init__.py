"""dlt destinations that send warehouse rows to vendors."""
