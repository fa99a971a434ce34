"""Any request to the broker ingress — random CloudEvents headers (binary mode), random structured
bodies, random paths and methods — is answered 202 or a 4xx, never a 5xx, by the real ingress on
the real broker (each Kafka kind). A 503 would be honest only when Kafka fails; it does not here."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.integration.eventing.conftest import Eventing, broker
from tests.support.fuzzing import bounded

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Header values httpx can send (latin-1, no line breaks); names among the CloudEvents attributes.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                      max_size=40).map(str.strip)  # a field value has no edge whitespace (RFC 9110)
ATTRIBUTES = ["specversion", "id", "type", "source", "subject", "time", "dataschema", "partitionkey",
              "traceparent", "x", "Ünicode", ""]
SPECVERSIONS = st.sampled_from(["1.0", "0.3", "", "2.0", "1.0.0"])
BINARY = st.fixed_dictionaries(
    {"ce-specversion": SPECVERSIONS, "ce-id": HEADER_TEXT, "ce-type": HEADER_TEXT, "ce-source": HEADER_TEXT},
    optional={
        **{f"ce-{name}": HEADER_TEXT for name in ATTRIBUTES[4:] if name.isascii() and name},
        "content-type": st.sampled_from(["application/json", "text/plain", "application/cloudevents+json",
                                         "application/cloudevents-batch+json", "", "multipart/form-data"]),
    },
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
STRUCTURED = st.dictionaries(
    st.sampled_from([*ATTRIBUTES, "data", "data_base64", "datacontenttype"]), JSON_VALUES, max_size=8
)
SETTINGS = bounded(60)


@pytest.fixture
def ingress(eventing: Callable[..., Eventing]) -> Eventing:
    return eventing([broker("fuzz")], dispatcher=False, PAR_EVENTING_MAX_BODY_BYTES=4096)


def test_binary_mode_headers(ingress: Eventing) -> None:
    @SETTINGS
    @given(BINARY, st.binary(max_size=512))
    def check(headers: dict[str, str], body: bytes) -> None:
        raw = {name: value.encode("latin-1") for name, value in headers.items()}  # as sent on the wire
        response = ingress.client.post("/default/fuzz", content=body, headers=raw)
        assert response.status_code in (202, 400, 413, 415), (headers, response.status_code, response.text)

    check()


def test_structured_bodies(ingress: Eventing) -> None:
    @SETTINGS
    @given(st.one_of(STRUCTURED.map(json.dumps), st.text(max_size=200)), st.booleans())
    def check(body: str, batch: bool) -> None:
        kind = "application/cloudevents-batch+json" if batch else "application/cloudevents+json"
        response = ingress.client.post("/default/fuzz", content=body.encode(), headers={"content-type": kind})
        assert response.status_code in (202, 400, 413, 415), (body, response.status_code, response.text)

    check()


def test_paths_and_methods(ingress: Eventing) -> None:
    segment = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%"),
                      max_size=12)

    @SETTINGS
    @given(st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "POST"]), st.lists(segment, max_size=4))
    def check(method: str, parts: list[str]) -> None:
        response = ingress.client.request(method, ingress.url + "/" + "/".join(parts), content=b"{}")
        assert response.status_code < 500, (method, parts, response.status_code, response.text)

    check()
