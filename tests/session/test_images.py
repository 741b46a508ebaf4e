import base64
import struct
import zlib

import pytest

from palaver.protocol.errors import ProtocolError
from palaver.session.images import ImageInfo, image_tokens, inspect_image


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\0" + b"\x80\x80\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def jpeg_header(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\1\1\0\0\1\0\1\0\0"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\1\x11\0"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def test_png_and_jpeg_sizes_are_read() -> None:
    assert inspect_image(url("image/png", png(64, 32)), param="p") == ImageInfo(
        "image/png", 64, 32, len(png(64, 32))
    )
    info = inspect_image(url("image/jpeg", jpeg_header(1024, 768)), param="p")
    assert (info.mime, info.width, info.height) == ("image/jpeg", 1024, 768)


@pytest.mark.parametrize(
    "data_url",
    [
        "https://example.com/cat.png",
        "data:image/gif;base64,R0lGODlh",
        "data:image/png;base64,%%%not-base64",
        url("image/png", b"not a png at all"),
        url("image/jpeg", png(4, 4)),
    ],
)
def test_malformed_images_are_refused(data_url: str) -> None:
    with pytest.raises(ProtocolError) as info:
        inspect_image(data_url, param="item.content[0].image_url")
    assert info.value.code == "invalid_image" and info.value.param == "item.content[0].image_url"


def test_oversized_images_are_refused() -> None:
    with pytest.raises(ProtocolError, match="larger than"):
        inspect_image(url("image/png", png(8, 8)), param="p", max_bytes=10)


def test_image_tokens_follow_openai_rule() -> None:
    assert image_tokens(ImageInfo("image/png", 4000, 4000, 1), "low") == 85
    assert image_tokens(ImageInfo("image/png", 1024, 1024, 1), "high") == 85 + 170 * 4  # 768x768: 2x2 tiles
    assert image_tokens(ImageInfo("image/png", 2048, 4096, 1), "auto") == 85 + 170 * 6  # 768x1536: 2x3
    assert image_tokens(ImageInfo("image/png", 100, 100, 1), "high") == 85 + 170
