"""``to_markdown``: the page body as markdown, whatever markup it is given."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from intunedd.collections.markdown import to_markdown


def test_body_without_front_matter() -> None:
    markdown = to_markdown(
        "<html><head><title>T</title></head><body><h1>Hi</h1><p>a <a href='/x'>b</a></p></body></html>"
    )
    assert markdown.startswith("# Hi") and "[b](/x)" in markdown and "title:" not in markdown


_TAGS = (
    "<div> </div> <table> <tr> <td> </td> <ul> <li> </ul> <a_href='x'> </a> <pre> <![CDATA[ <!-- --> <script> </script>"
)
_markup = st.lists(
    st.sampled_from([tag.replace("_", " ") for tag in _TAGS.split()] + ["&amp;", "&#0;", "\x00", "|"])
    | st.text(max_size=10),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(html=_markup)
def test_any_markup_converts(html: str) -> None:
    assert isinstance(to_markdown(html), str)
