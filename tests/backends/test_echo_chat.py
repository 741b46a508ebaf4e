from palaver.backends.base import ChatFinished, ChatRequest, TextDelta
from palaver.backends.llm.echo import EchoChat


async def answer(messages: list[dict]) -> str:
    out = []
    async for ev in EchoChat().stream(ChatRequest(messages=messages)):
        if isinstance(ev, TextDelta):
            out.append(ev.text)
        else:
            assert isinstance(ev, ChatFinished) and ev.reason == "stop"
    return "".join(out)


async def test_repeats_the_last_user_message() -> None:
    messages = [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "You said: first."},
        {"role": "user", "content": [{"type": "text", "text": "Hello there!"}]},
    ]
    assert await answer(messages) == "You said: Hello there."


async def test_says_so_when_it_heard_nothing() -> None:
    assert (
        await answer([{"role": "system", "content": "x"}]) == "I did not catch that. Could you say it again?"
    )
