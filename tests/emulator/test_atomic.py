"""emulator/atomic.py: moto's DynamoDB backend serves one request at a time while installed.

Two uploads trained at once once failed RegisterModel with "dictionary changed size during
iteration": moto's TransactWriteItems deep-copied the table while another thread's PutItem wrote to
it. These tests hold a transaction open inside the backend and check that another thread's write
waits for it (installed) or does not (uninstalled, the race the runtime had).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler

from emulator import atomic

TABLE = "registry"
# How long the held transaction waits for the other thread's write: installed, the write cannot
# finish meanwhile, so the wait is spent whole (kept short); uninstalled, the write ends the wait as
# soon as it lands, so a generous bound costs nothing and a loaded machine cannot fail the control.
HELD_WHILE_INSTALLED = 1.0
HELD_AT_MOST = 30.0


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _order_of_a_write_during_a_transaction(
    client: Any, monkeypatch: pytest.MonkeyPatch, hold: float
) -> list[str]:
    """Run a TransactWriteItems that pauses inside moto's backend, and a PutItem from another thread
    started during the pause; return the order in which the two finished."""
    inside, written = threading.Event(), threading.Event()
    finished: list[str] = []
    original = DynamoDBBackend.transact_write_items

    def held(self: Any, *args: Any, **kwargs: Any) -> Any:
        inside.set()
        written.wait(hold)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", held)

    def transaction() -> None:
        client.transact_write_items(TransactItems=[{"Put": {"TableName": TABLE, "Item": {"pk": {"S": "a"}}}}])
        finished.append("transaction")

    def write() -> None:
        inside.wait(30)
        client.put_item(TableName=TABLE, Item={"pk": {"S": "b"}})
        finished.append("put")
        written.set()

    threads = [threading.Thread(target=transaction), threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return finished


def test_a_write_waits_for_a_transaction_in_progress_while_installed(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    atomic.install()
    try:
        finished = _order_of_a_write_during_a_transaction(dynamodb, monkeypatch, HELD_WHILE_INSTALLED)
    finally:
        atomic.uninstall()

    assert finished == ["transaction", "put"]
    assert {item["pk"]["S"] for item in dynamodb.scan(TableName=TABLE)["Items"]} == {"a", "b"}


def test_without_it_a_write_lands_inside_a_transaction(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: moto alone lets the write through mid-transaction (what broke the runtime)."""
    assert DynamoHandler.call_action is not atomic._call_action

    finished = _order_of_a_write_during_a_transaction(dynamodb, monkeypatch, HELD_AT_MOST)

    assert finished == ["put", "transaction"]


def test_installs_nest_and_the_last_uninstall_restores_moto() -> None:
    original = DynamoHandler.call_action
    atomic.install()
    atomic.install()
    atomic.uninstall()
    assert DynamoHandler.call_action is atomic._call_action
    atomic.uninstall()
    assert DynamoHandler.call_action is original
    atomic.uninstall()  # one too many is harmless
    assert DynamoHandler.call_action is original
