"""A complaint-ledger client in Python: append, read a case, subscribe, and
decode a refusal's details.

    pip install -r requirements.txt
    python client.py                # server: COMPLAINT_LEDGER_SERVER or 127.0.0.1:50051

Stubs are generated from the repository's proto/ at start (grpcio-tools), so
the example always matches the API it runs against. Against a server with
authentication, set COMPLAINT_LEDGER_TOKEN (a JWT); without one, the
development server names the caller by the x-actor header.
"""

import os
import pathlib
import sys
import tempfile
import time
import uuid

import grpc
from grpc_status import rpc_status
from google.rpc import error_details_pb2
from grpc_tools import protoc

HERE = pathlib.Path(__file__).resolve().parent
PROTO = HERE.parent.parent / "proto"


def generate_stubs() -> None:
    """Compiles ../../proto into a temporary package on sys.path."""
    out = pathlib.Path(tempfile.mkdtemp(prefix="complaint-ledger-py-"))
    files = [str(p.relative_to(PROTO)) for p in (PROTO / "complaint_ledger" / "v1").glob("*.proto")]
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    code = protoc.main(
        ["protoc", f"-I{PROTO}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", *files]
    )
    if code != 0:
        sys.exit(f"protoc failed ({code})")
    sys.path.insert(0, str(out))


generate_stubs()
from complaint_ledger.v1 import (  # noqa: E402  (generated above)
    errors_pb2,
    events_pb2,
    ledger_pb2,
    ledger_pb2_grpc,
)
from google.protobuf import timestamp_pb2  # noqa: E402


def metadata():
    token = os.environ.get("COMPLAINT_LEDGER_TOKEN")
    if token:
        return [("authorization", f"Bearer {token.strip()}")]
    return [("x-actor", "example-py")]


def ts(text: str) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromJsonString(text)
    return t


def main() -> int:
    server = os.environ.get("COMPLAINT_LEDGER_SERVER", "127.0.0.1:50051")
    server = server.removeprefix("http://")
    channel = grpc.insecure_channel(server)
    ledger = ledger_pb2_grpc.LedgerStub(channel)
    case_id = f"py-{uuid.uuid4().hex[:12]}"

    # 1. Append: open a case and record the customer's demand, atomically.
    opened = ledger_pb2.ProposedEvent(
        event_id=f"{case_id}-open",
        occurred_at=ts("2020-12-03T01:24:30+08:00"),
        acted_for_agent="8030",
        event=events_pb2.CaseEvent(
            case_opened=events_pb2.CaseOpened(customer_id="cust-py", business_line="qidian", category="自动订阅")
        ),
    )
    demand = ledger_pb2.ProposedEvent(
        event_id=f"{case_id}-d01",
        occurred_at=ts("2020-12-03T01:51:29+08:00"),
        acted_for_agent="8030",
        event=events_pb2.CaseEvent(
            demand_recorded=events_pb2.DemandRecorded(
                demand_id="d01",
                description="需要电话回复, 短信讲不清楚",
                required_channel=events_pb2.CHANNEL_OUTBOUND_CALL,
            )
        ),
    )
    request = ledger_pb2.AppendRequest(
        case_id=case_id,
        expected_version=ledger_pb2.ExpectedVersion(no_case=ledger_pb2.Empty()),
        events=[opened, demand],
    )
    r = ledger.Append(request, metadata=metadata())
    print(f"appended {case_id}: positions {r.first_position}-{r.last_position}, version {r.case_version}")
    assert r.case_version == 2, r

    # 2. Read the case back.
    events = list(ledger.ReadCase(ledger_pb2.ReadCaseRequest(case_id=case_id), metadata=metadata()))
    print("read:", ", ".join(f"v{e.case_version} {e.event_type}" for e in events))
    assert [e.event_type for e in events] == ["CaseOpened", "DemandRecorded"], events

    # 3. Subscribe from the case's first position: catch up, then the marker
    # that live events follow.
    stream = ledger.Subscribe(ledger_pb2.SubscribeRequest(from_position=r.first_position), metadata=metadata())
    seen = []
    deadline = time.time() + 10
    for msg in stream:
        if msg.HasField("event"):
            seen.append(msg.event.event_id)
        elif msg.HasField("caught_up"):
            print(f"subscribed: {len(seen)} events caught up to position {msg.caught_up.position}")
            break
        if time.time() > deadline:
            break
    stream.cancel()
    assert f"{case_id}-d01" in seen, seen

    # 4. A refusal, decoded: the rule it broke, as the documented enum.
    again = ledger_pb2.AppendRequest(case_id=case_id, events=[opened])
    again.events[0].event_id = f"{case_id}-open-again"
    try:
        ledger.Append(again, metadata=metadata())
        print("FAILED: a second CaseOpened was accepted")
        return 1
    except grpc.RpcError as err:
        status = rpc_status.from_call(err)
        reason = None
        rule = None
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = errors_pb2.ErrorReason.Value(info.reason)
            elif detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
                failure = error_details_pb2.PreconditionFailure()
                detail.Unpack(failure)
                rule = failure.violations[0].type
        print(f"refused: {err.code().name} {errors_pb2.ErrorReason.Name(reason)} ({rule}): {err.details()}")
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason == errors_pb2.CASE_ALREADY_OPENED and rule == "case_already_opened"
    print("python example: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
