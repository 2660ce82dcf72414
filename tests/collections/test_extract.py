"""``extract_fields`` on static HTML: values as documented, and any selector either works or is refused
with ``ExtractInvalid`` (an exception of another kind would escape a scrape)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intunedd.collections.extract import ExtractInvalid, extract_fields
from intunedd.collections.request import ExtractSpec

HTML = """<html><body><h1> A  <b>title</b></h1><script>var x = 1;</script>
<ul><li><a href="/1">one</a></li><li><a href="/2">two</a></li></ul></body></html>"""


def test_values() -> None:
    assert extract_fields(
        HTML,
        {
            "h1": "h1",
            "links": ExtractSpec(selector="css:a::attr(href)", multiple=True),
            "text_node": "xpath://li[2]/a/text()",
            "href": ExtractSpec(selector="xpath://a", attribute="href"),
            "missing_attribute": ExtractSpec(selector="h1", attribute="id"),
            "count": "xpath:count(//li)",
            "body": "css:body",
        },
    ) == {
        "h1": "A title",
        "links": ["/1", "/2"],
        "text_node": "two",
        "href": "/1",
        "missing_attribute": None,
        "count": "2.0",
        "body": "A title one two",  # script text is not text
    }


@pytest.mark.parametrize("selector", ["css:[[", "xpath:///", "css:a:nope", "xpath:count(", "css:a::foo"])
def test_bad_selectors_are_refused_with_the_field_named(selector: str) -> None:
    with pytest.raises(ExtractInvalid, match="extract 'f': invalid"):
        extract_fields(HTML, {"f": selector})


@settings(max_examples=300, deadline=None)
@given(
    selector=st.one_of(
        st.text(max_size=30),
        st.builds(lambda s: "css:" + s, st.text(alphabet="abc.#[]():=*>+~ '\"-_\\", max_size=20)),
        st.builds(lambda s: "xpath:" + s, st.text(alphabet="ab/@[]()=.*:' \"|-", max_size=20)),
    ),
    multiple=st.booleans(),
)
def test_any_selector_works_or_is_refused(selector: str, multiple: bool) -> None:
    try:
        extract_fields(HTML, {"f": ExtractSpec(selector=selector, multiple=multiple)})
    except ExtractInvalid:
        pass
