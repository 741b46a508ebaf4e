from palaver.engine.context import PENDING_CALL_OUTPUT, build_messages
from palaver.protocol.items import (
    FunctionCallItem,
    FunctionCallOutputItem,
    InputAudioContent,
    InputTextContent,
    MessageItem,
    OutputAudioContent,
    OutputTextContent,
)


def user(text: str) -> MessageItem:
    return MessageItem(id=f"u-{text}", type="message", role="user", content=[InputTextContent(text=text)])


def call(call_id: str, name: str = "lookup") -> FunctionCallItem:
    return FunctionCallItem(
        id=f"i-{call_id}", type="function_call", call_id=call_id, name=name, arguments="{}"
    )


def output(call_id: str, out: str) -> FunctionCallOutputItem:
    return FunctionCallOutputItem(id=f"o-{call_id}", type="function_call_output", call_id=call_id, output=out)


def test_instructions_then_turns() -> None:
    items = [
        user("hi"),
        MessageItem(
            id="a1", type="message", role="assistant", content=[OutputAudioContent(transcript="Hello!")]
        ),
        MessageItem(
            id="u2", type="message", role="user", content=[InputAudioContent(transcript="what time is it")]
        ),
    ]
    assert build_messages("Be brief.", items) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "what time is it"},
    ]


def test_tool_call_and_output_pair_up() -> None:
    items = [user("order 42?"), call("c1"), output("c1", '{"status":"shipped"}')]
    msgs = build_messages("", items)
    assert msgs[1]["role"] == "assistant"
    assert msgs[1]["tool_calls"][0]["id"] == "c1"
    assert msgs[2] == {"role": "tool", "tool_call_id": "c1", "content": '{"status":"shipped"}'}
    assert len(msgs) == 3


def test_preamble_text_and_call_share_one_assistant_message() -> None:
    items = [
        user("order 42?"),
        MessageItem(id="a", type="message", role="assistant", content=[OutputTextContent(text="Checking.")]),
        call("c1"),
        call("c2"),
        output("c1", "one"),
        output("c2", "two"),
    ]
    msgs = build_messages("", items)
    assert msgs[1]["content"] == "Checking."
    assert [c["id"] for c in msgs[1]["tool_calls"]] == ["c1", "c2"]
    assert [m["tool_call_id"] for m in msgs[2:]] == ["c1", "c2"]


def test_pending_call_gets_placeholder_and_late_output_moves_next_to_its_call() -> None:
    pending = build_messages("", [user("book it"), call("c1"), user("are you still there?")])
    assert pending[2] == {"role": "tool", "tool_call_id": "c1", "content": PENDING_CALL_OUTPUT}
    assert pending[3]["role"] == "user"

    late = build_messages("", [user("book it"), call("c1"), user("still there?"), output("c1", "booked")])
    assert late[2] == {"role": "tool", "tool_call_id": "c1", "content": "booked"}
    assert late[3] == {"role": "user", "content": "still there?"}
    assert len(late) == 4


def test_output_without_its_call_becomes_user_text() -> None:
    msgs = build_messages("", [output("zz", "42")])
    assert msgs == [{"role": "user", "content": "[function result zz] 42"}]
