"""Merchant QR codes drawn as PNG and SVG read back by a real decoder (zxing-cpp), byte for byte."""

from __future__ import annotations

import io
import re

import pytest
import zxingcpp
from PIL import Image

from mobipay.instore import render
from mobipay.instore.model import AdditionalData, Initiation, LocalName, MerchantQr, encode
from mobipay.kernel.errors import MobipayError

MERCHANT = "mch_0192f3c4aa5b7c8d9e0f112233445566"
STORE = "str_0192f3c4aa5b7c8d9e0f112233445566"
LOCAL = LocalName("ZH", "华新便利店", "上海")

STATIC = MerchantQr(Initiation.STATIC, MERCHANT, "5411", "HUAXIN BIANLIDIAN", "SHANGHAI", store_id=STORE,
                    additional=AdditionalData(store_label="Nanjing Rd"), local=LOCAL)
DYNAMIC = MerchantQr(Initiation.DYNAMIC, MERCHANT, "5411", "HUAXIN BIANLIDIAN", "SHANGHAI", amount=12_345,
                     store_id=STORE, additional=AdditionalData(bill_number="ord_20260601_0001", terminal_label="T02"),
                     local=LOCAL)


def read(png: bytes) -> zxingcpp.Barcode:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("qr", [STATIC, DYNAMIC], ids=["static", "dynamic"])
def test_the_png_decodes_to_the_payload_byte_for_byte(qr: MerchantQr) -> None:
    payload = encode(qr)
    assert "华新便利店" in payload  # the local-language name travels in template 64, as UTF-8
    barcode = read(render.png(payload))
    assert barcode.format == zxingcpp.BarcodeFormat.QRCode
    assert barcode.bytes == payload.encode("utf-8")
    assert barcode.text == payload
    assert barcode.ec_level == "M"


def test_the_png_has_its_quiet_zone() -> None:
    scale = 8
    image = Image.open(io.BytesIO(render.png(encode(DYNAMIC), scale=scale))).convert("L")
    width, height = image.size
    margin = render.QUIET_ZONE * scale
    pixels = image.load()
    assert pixels is not None
    for x in range(width):
        for y in (*range(margin), *range(height - margin, height)):
            assert pixels[x, y] == 255 and pixels[y, x] == 255
    assert pixels[margin, margin] == 0  # the finder pattern starts right after it


def test_the_svg_is_the_same_symbol_with_its_quiet_zone() -> None:
    payload = encode(DYNAMIC)
    document = render.svg(payload, scale=4)
    assert document.startswith("<svg") and "<?xml" not in document  # inline in a page
    side = render.symbol(payload).symbol_size(scale=4, border=render.QUIET_ZONE)
    assert re.search(rf'width="{side[0]}" height="{side[1]}"', document)
    assert render.symbol(payload).error == "M" and render.symbol(payload).mode == "byte"


def test_nothing_we_would_refuse_is_drawn() -> None:
    payload = encode(DYNAMIC)
    with pytest.raises(MobipayError) as info:
        render.png(payload.replace("HUAXIN", "HUAXIM"))
    assert info.value.code == "QR_BAD_CRC"
