from intunedd.jsonc import loads_jsonc


def test_loads_jsonc_keeps_strings_intact() -> None:
    text = '{\n "a": "http://x//y", // comment\n "b": "not,}a comma", /* block\n */ "c": [1, 2,],\n}'
    assert loads_jsonc(text) == {"a": "http://x//y", "b": "not,}a comma", "c": [1, 2]}
