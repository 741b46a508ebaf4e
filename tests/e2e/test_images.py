"""Image input over the stock SDK: it reaches the brain in OpenAI's vision format, or is refused clearly."""

from __future__ import annotations

import base64

import pytest

from tests.e2e.realtime_client import collect_until, connect, of_type, recv
from tests.e2e.test_echo_brain import bare_server  # noqa: F401 - the fixture
from tests.session.test_images import png

pytestmark = pytest.mark.e2e

TEXT = {"output_modalities": ["text"], "audio": {"input": {"turn_detection": None}}}


def image_item(data_url: str, detail: str = "low") -> dict:
    return {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "What colour is this?"},
            {"type": "input_image", "image_url": data_url, "detail": detail},
        ],
    }


async def test_image_reaches_the_brain_as_an_image_part(palaver_server, llm) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(png(32, 16)).decode()
    llm.push_text("It is grey.")
    async with connect(palaver_server, **TEXT) as conn:
        await conn.conversation.item.create(item=image_item(data_url))
        await collect_until(conn, "conversation.item.done")
        await conn.response.create()
        events = await collect_until(conn, "response.done")
    user = llm.requests[-1]["messages"][-1]
    assert user["role"] == "user"
    assert user["content"] == [
        {"type": "text", "text": "What colour is this?"},
        {"type": "image_url", "image_url": {"url": data_url, "detail": "low"}},
    ]
    usage = events[-1].response.usage
    assert usage.input_token_details.image_tokens == 85  # low detail


@pytest.mark.parametrize(
    ("data_url", "code"),
    [
        ("data:image/png;base64," + base64.b64encode(b"this is no png").decode(), "invalid_image"),
        ("https://example.com/cat.png", "invalid_image"),
        ("data:image/png;base64," + "A" * (11 * 1024 * 1024 * 4 // 3), "invalid_image"),  # over 10 MB
    ],
)
async def test_bad_images_get_an_error_and_the_session_goes_on(
    palaver_server, llm, data_url: str, code: str
) -> None:
    async with connect(palaver_server, **TEXT) as conn:
        await conn.conversation.item.create(item=image_item(data_url), event_id="img")
        error = await recv(conn)
        assert error.type == "error" and error.error.code == code and error.error.event_id == "img"
        assert error.error.param == "item.content[1].image_url"
        llm.push_text("Fine.")
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        )
        await conn.response.create()
        events = await collect_until(conn, "response.done")
        assert events[-1].response.status == "completed"
        # The refused item never entered the conversation: the brain saw only the text turn.
        assert llm.requests[-1]["messages"][-1] == {"role": "user", "content": "hi"}
        assert not any("image" in str(m) for m in llm.requests[-1]["messages"])


async def test_a_text_only_brain_refuses_images_plainly(bare_server) -> None:  # noqa: F811
    data_url = "data:image/png;base64," + base64.b64encode(png(8, 8)).decode()
    async with connect(bare_server, **TEXT) as conn:
        await conn.conversation.item.create(item=image_item(data_url))
        error = await recv(conn)
        assert error.type == "error" and error.error.code == "image_input_not_supported"
        assert "does not take images" in error.error.message
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}
        )
        await conn.response.create()
        events = await collect_until(conn, "response.done")
        assert of_type(events, "response.output_text.done")[0].text == "You said: hello."
