"""Journal hygiene and filters, concurrency, vanishing clients, quietness, lifecycle."""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from sandbox import Sandbox
from tests.sandbox.conftest import AUTH, GUIDS


def test_journal_never_holds_secrets_or_password(sb: Sandbox, secrets, send, ctl) -> None:
    send()
    send(ListSecret=secrets[2])  # a wrong-but-real secret must not leak either
    requests.delete(f"{sb.sms_url}/lists/1/listsecret", params={"listGUID": GUIDS[1]}, auth=AUTH)
    text = json.dumps(ctl("GET", "journal"))
    for secret in secrets.values():
        assert secret not in text
    assert "sandbox-password" not in text and "Authorization" not in text
    sends = ctl("GET", "journal", params={"operation": "send_sms"})["entries"]
    assert [e["list_secret_valid"] for e in sends] == [True, False]


def test_journal_filters(sb: Sandbox, secrets, send, ctl) -> None:
    send()
    send(Recipient="nope")
    entries = ctl("GET", "journal")["entries"]
    assert [e["seq"] for e in entries] == list(range(1, 6))  # 3 listsecret_create + 2 sends
    assert [e["operation"] for e in entries[:3]] == ["listsecret_create"] * 3
    failed = ctl("GET", "journal", params={"operation": "send_sms", "processed": "false"})
    assert [e["code"] for e in failed["entries"]] == ["106"]
    done = ctl("GET", "journal", params={"processed": "true"})["entries"]
    assert len(done) == 4
    assert ctl("GET", "deliveries")["deliveries"] == [done[-1]]


def test_concurrent_sends_get_distinct_delivery_ids(sb: Sandbox, payload, ctl) -> None:
    sb.set_limits(sms_per_second=0)  # 200 sends as fast as 8 threads go: over MailUp's 30/s
    url = f"{sb.sms_url}/sms/1234/1"

    def worker(n: int) -> list[int]:
        with requests.Session() as s:
            return [s.post(url, json=payload()).json()["Data"]["DeliveryId"] for _ in range(25)]

    with ThreadPoolExecutor(8) as pool:
        ids = [i for chunk in pool.map(worker, range(8)) for i in chunk]
    assert sorted(ids) == list(range(1, 201))
    assert len(ctl("GET", "deliveries")["deliveries"]) == 200
    assert ctl("GET", "state/accounts")["accounts"][0]["credits"] == 1_000_000 - 200


def test_survives_vanishing_and_garbage_clients(sb: Sandbox, send) -> None:
    host, port = sb.url.removeprefix("http://").split(":")
    partial = b"POST /sms/api/v2.0/sms/1234/1 HTTP/1.1\r\nContent-Length: 500\r\n\r\n{"
    for data in (
        b"",
        b"GARBAGE\r\n\r\n",
        partial,
        b"GET /sms/api/v2.0/lists/1/listsecret HTTP/1.1\r\n",
    ):
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(data)
    assert send().json()["Code"] == "0"


def test_quiet_by_default(sb: Sandbox, send, capfd: pytest.CaptureFixture[str]) -> None:
    send()
    requests.get(f"{sb.url}/nowhere")
    assert capfd.readouterr().err == ""


def test_unknown_routes_404(sb: Sandbox) -> None:
    assert requests.get(f"{sb.sms_url}/nowhere").status_code == 404
    assert requests.put(f"{sb.sms_url}/lists/1/listsecret").status_code == 404
    assert requests.get(f"{sb.url}/_sandbox/nowhere").status_code == 404


def test_stop_closes_keep_alive_connections_and_port() -> None:
    box = Sandbox().start()
    session = requests.Session()
    assert session.get(f"{box.sms_url}/lists/1/listsecret", auth=AUTH).ok
    url = box.url
    box.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(f"{url}/sms/api/v2.0/lists/1/listsecret", auth=AUTH)
    with pytest.raises(RuntimeError):
        _ = box.url


def test_python_conveniences_match_http(sb: Sandbox, ctl) -> None:
    secret = sb.create_list_secret(2)
    assert sb.create_list_secret(2) == secret
    r = requests.get(f"{sb.sms_url}/lists/2/listsecret", auth=AUTH)
    assert r.json()["Data"]["ListSecret"] == secret
    sb.force(403, "204")
    body = {"Content": "x", "ListGuid": GUIDS[2], "ListSecret": secret, "Recipient": "+3933512345"}
    assert requests.post(f"{sb.sms_url}/sms/1234/2", json=body).json()["Code"] == "204"
    sb.set_faults(rate_301=1.0)
    assert requests.post(f"{sb.sms_url}/sms/1234/2", json=body).json()["Code"] == "301"
    sb.set_faults()
    assert [e["fault"] for e in sb.journal("send_sms")] == ["forced", "301"]
    assert sb.deliveries() == ctl("GET", "deliveries")["deliveries"]
    with pytest.raises(ValueError):
        sb.delete_list_secret(2, GUIDS[1])
    sb.delete_list_secret(2, GUIDS[2])
    assert requests.post(f"{sb.sms_url}/sms/1234/2", json=body).json()["Code"] == "103"
    sb.reset()
    assert sb.journal() == [] and ctl("GET", "state/lists")["lists"][1]["list_secret"] is None


def test_stats_count_requests_and_deliveries(sb: Sandbox) -> None:
    requests.get(f"{sb.sms_url}/lists/1/listsecret", timeout=5)  # 401: a request, no delivery
    secret = sb.create_list_secret(1)
    body = {
        "Content": "hi",
        "ListGuid": GUIDS[1],
        "ListSecret": secret,
        "Recipient": "+393350000001",
    }
    requests.post(f"{sb.sms_url}/sms/1234/1", json=body, timeout=5)

    stats = requests.get(f"{sb.control_url}/stats", timeout=5).json()

    assert stats == {"requests": 2, "deliveries": 1, "limited": 0}
