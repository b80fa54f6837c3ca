"""One Pirsch login, one token per process: the clients a `migrate` makes (read, push, read back) share it, and
a token the vendor refuses is renewed once for all of them (the token endpoint allows 10 calls a minute)."""

from __future__ import annotations

from simulators.pirsch import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, PirschSimulator
from sources.common.errors import AuthError
from sources.pirsch.client import PirschClient

TOKEN_PATH = r"/api/v1/token$"


def client(simulator: PirschSimulator, secret: str = DEMO_CLIENT_SECRET) -> PirschClient:
    return PirschClient(simulator.url, DEMO_CLIENT_ID, secret, timeout=5.0)


def test_clients_of_one_login_share_its_token(simulator: PirschSimulator) -> None:
    first, second = client(simulator), client(simulator)
    try:
        assert first.domains() and second.domains()
        assert simulator.count(TOKEN_PATH) == 1
    finally:
        first.close()
        second.close()


def test_a_refused_token_is_renewed_once_and_the_other_clients_take_the_new_one(simulator: PirschSimulator) -> None:
    first, second = client(simulator), client(simulator)
    try:
        first.get("/domain")
        simulator.tokens.expire_all()
        first.get("/domain")  # 401, renewed
        assert simulator.count(TOKEN_PATH) == 2
        second.get("/domain")
        assert simulator.count(TOKEN_PATH) == 2
    finally:
        first.close()
        second.close()


def test_another_secret_is_not_let_in_on_a_token_of_the_right_one(simulator: PirschSimulator) -> None:
    right, wrong = client(simulator), client(simulator, secret="not-the-secret")
    try:
        right.domains()
        try:
            wrong.domains()
        except AuthError:
            pass
        else:
            raise AssertionError("a wrong client_secret was let in on another client's token")
    finally:
        right.close()
        wrong.close()
