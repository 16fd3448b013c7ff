"""Conventions are data: TOML or JSON files of the same fields, with one clear error each."""
import json

import pytest

from fuzz import conventions


def test_conventions_load_from_toml_and_json(tmp_path):
    toml = tmp_path / "mine.toml"
    toml.write_text('base = "vllm"\nop = "sorting"\nties = "any"\n[domain]\nmax_topk = 4\nexperts = [8, 16]\n')
    conv = conventions.load(str(toml))
    assert (conv.name, conv.layout, conv.op, conv.ties, conv.domain.max_topk, conv.domain.experts) == \
        ("mine", "vllm", "sorting", "any", 4, (8, 16))
    js = tmp_path / "mine.json"
    js.write_text(json.dumps({"layout": "ck", "order": "unordered"}))
    assert conventions.load(str(js)).order == "unordered"


@pytest.mark.parametrize(("text", "message"), [
    ('layout = "sgl"', "layout must be one of ck, vllm"),
    ('colour = "red"', "unknown field"),
    ('[domain]\nsize = 3', "unknown domain field"),
    ('[domain]\nsupports = ["bias"]', "domain.supports"),
    ('layout = ', "convention file"),
])
def test_a_bad_convention_file_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        conventions.load(str(path))


def test_unknown_convention_name():
    with pytest.raises(ValueError, match="ck, vllm or a .toml"):
        conventions.load("aiter-ish")
