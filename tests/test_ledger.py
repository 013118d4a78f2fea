"""The ledger survives crashes and removal touches only what was recorded."""

import subprocess

import pytest

from edgetestbed import ledger as resources
from edgetestbed.ledger import Ledger


def test_entries_survive_a_torn_last_line(tmp_path):
    book = Ledger(tmp_path / "r.jsonl")
    book.record("link", name="x1")
    with open(book.path, "a") as stream:
        stream.write('{"kind": "link", "na')  # a crash in the middle of a write
    assert book.entries() == [{"kind": "link", "name": "x1"}]


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError):
        Ledger(tmp_path / "r.jsonl").record("volcano", name="x")


def test_a_recorded_process_is_ended(ledger):
    child = subprocess.Popen(["sleep", "60"])
    entry = ledger.record_process(child.pid, ["sleep", "60"])
    assert resources.exists(entry)
    resources.remove(entry)
    assert not resources.exists(entry)
    assert resources.process_starttime(child.pid) is None  # ended and reaped, not a zombie


def test_a_reused_pid_is_never_killed(ledger):
    """An entry whose start time does not match the live process is not that process."""
    child = subprocess.Popen(["sleep", "60"])
    try:
        entry = {"kind": "process", "pid": child.pid,
                 "starttime": resources.process_starttime(child.pid) - 1, "argv": "other"}
        assert not resources.exists(entry)
        resources.remove(entry)
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


@pytest.mark.root
def test_links_and_chains_are_removed_by_name(ledger):
    link = ledger.record("link", name="etbtestdummy0")
    subprocess.run(["ip", "link", "add", "etbtestdummy0", "type", "bridge"], check=True)
    chain = ledger.record("iptables-chain", table="mangle", chain="ETB-TEST-RES", hooks=["PREROUTING"])
    subprocess.run(["iptables", "-w", "-t", "mangle", "-N", "ETB-TEST-RES"], check=True)
    subprocess.run(["iptables", "-w", "-t", "mangle", "-A", "PREROUTING", "-j", "ETB-TEST-RES"], check=True)
    assert resources.exists(link) and resources.exists(chain)
    assert resources.remove_all(ledger.entries()) == []
    rules = subprocess.run(["iptables-save", "-t", "mangle"], capture_output=True, text=True).stdout
    assert "ETB-TEST-RES" not in rules
