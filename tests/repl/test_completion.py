"""Completion as pure functions: grammar-driven keywords, scoped columns, values, commands."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caveql.repl.completion import CompletionCatalog, fuzzy_rank, suggest

SYN = "synapses_pni_2"
NUC = "nucleus_detection_v0"
CT = "aibs_soma_nuc_metamodel_preds_v117"


@pytest.fixture
def cat() -> CompletionCatalog:
    return CompletionCatalog(
        tables=[SYN, NUC, CT, "proofreading_status_public_release"],
        views=["synapses_v2_view"],
        columns={
            SYN: [("id", "int"), ("size", "int"), ("pre_pt_root_id", "int"), ("post_pt_root_id", "int"),
                  ("ctr_pt_position", "position")],
            NUC: [("id", "int"), ("volume", "float"), ("pt_root_id", "int"), ("pt_position", "position")],
            CT: [("id", "int"), ("pt_root_id", "int"), ("id_ref", "int"), ("target_id", "int"),
                 ("cell_type", "string"), ("classification_system", "string"), ("pt_position", "position")],
        },
        values={(CT, "cell_type"): ["BC", "MC", "23P", "4P", "it's"],
                (CT, "classification_system"): ["aibs_neuronal", "aibs_nonneuronal"]},
        variables=["root_id", "ids", "proofread_ids"],
        datastacks=["minnie65_public", "minnie65_demo"],
    )


def texts(text: str, cat: CompletionCatalog, cursor: int | None = None) -> list[str]:
    return [c.text for c in suggest(text, len(text) if cursor is None else cursor, cat)]


# (text, cursor or None, must contain, must not contain)
CASES = [
    ("", None, ["SELECT", "SHOW", "DESCRIBE", "EXPLAIN", "SET", "USE"], [SYN]),
    ("sel", None, ["select"], ["SELECT"]),
    ("SEL", None, ["SELECT"], []),
    ("SELECT * FROM ", None, [SYN, NUC, CT, "synapses_v2_view"], ["WHERE", "id"]),
    ("SELECT * FROM syn", None, [SYN, "synapses_v2_view"], [NUC]),
    ("SELECT * FROM snp", None, [SYN], []),  # fuzzy: subsequence
    ("SELECT * FROM nuc_det", None, [NUC], []),
    ("SELECT * FROM t JOIN ", None, [SYN, CT], []),
    ("DESCRIBE ", None, [SYN, "synapses_v2_view"], []),
    ("DESCRIBE aibs", None, [CT], [SYN]),
    ("SELECT  FROM " + NUC, 7, ["id", "volume", "pt_root_id", "pt_position", "pt_position_x", "COUNT("],
     ["size", "cell_type"]),
    ("SELECT vol FROM " + NUC, 10, ["volume"], ["id"]),
    ("SELECT pt_position_ FROM " + NUC, 19, ["pt_position_x", "pt_position_y", "pt_position_z"], []),
    ("SELECT s. FROM " + SYN + " s", 9, ["pre_pt_root_id", "ctr_pt_position_z"], ["volume", "SELECT"]),
    ("SELECT c.cell FROM " + CT + " c", 13, ["cell_type"], ["size"]),
    ("SELECT * FROM " + SYN + " s JOIN " + CT + " c ON s.post_pt_root_id = c.pt_root_id WHERE ",
     None, ["size", "cell_type", "c.id", "s.id", "c", "s"], ["volume"]),
    ("SELECT * FROM " + SYN + " s JOIN " + CT + " c ON s.post_pt_root_id = c.", None,
     ["pt_root_id", "cell_type", "target_id"], ["size"]),
    ("SELECT * FROM " + SYN + " WHERE pre", None, ["pre_pt_root_id"], ["post_pt_root_id"]),
    ("SELECT * FROM " + SYN + " WHERE size ", None, ["IN", "BETWEEN", "IS", "LIKE", "NOT"], ["size"]),
    ("SELECT * FROM " + SYN + " WHERE size > 1 ", None, ["AND", "OR", "ORDER", "LIMIT", "AT", "GROUP"], []),
    ("SELECT * FROM " + SYN + " ", None, ["WHERE", "JOIN", "AT", "LIMIT", "SPLIT", "AS"], ["FROM"]),
    ("SELECT * FROM " + SYN + " AT ", None, ["RESOLUTION", "VERSION", "TIMESTAMP", "LIVE"], ["WHERE"]),
    ("SELECT * FROM " + SYN + " SPLIT ", None, ["POSITIONS"], []),
    ("SELECT * FROM " + SYN + " ORDER BY size ", None, ["ASC", "DESC", "NULLS", "LIMIT"], []),
    ("SELECT * FROM " + SYN + " ORDER BY size DESC NULLS ", None, ["FIRST", "LAST"], []),
    ("SHOW ", None, ["TABLES", "VIEWS", "VERSIONS", "DATASTACK"], ["SELECT"]),
    ("SHOW TABLES ", None, ["LIKE"], []),
    ("EXPLAIN ", None, ["ANALYZE", "SELECT"], []),
    ("SET ", None, ["version", "resolution", "timestamp"], []),
    ("USE ", None, ["minnie65_public", "minnie65_demo"], []),
    ("SELECT cell_type, COUNT(*) FROM " + CT + " GROUP BY ", None, ["cell_type"], []),
    ("SELECT * FROM " + SYN + " WHERE pre_pt_root_id = :", None, [":root_id", ":ids", ":proofread_ids"], []),
    ("SELECT * FROM " + SYN + " WHERE pre_pt_root_id IN :pro", None, [":proofread_ids"], [":ids"]),
    ("SELECT * FROM " + CT + " WHERE cell_type = '", None, ["BC'", "MC'", "23P'", "it''s'"], []),
    ("SELECT * FROM " + CT + " WHERE cell_type = 'B", None, ["BC'"], ["MC'"]),
    ("SELECT * FROM " + CT + " c WHERE c.cell_type IN ('BC', '", None, ["MC'"], []),
    ("SELECT * FROM " + CT + " WHERE classification_system != 'aibs_n", None,
     ["aibs_neuronal'", "aibs_nonneuronal'"], []),
    ("SELECT * FROM " + SYN + " WHERE size = '", None, [], ["BC'"]),
    ("SELECT * FROM " + SYN + " -- a comm", None, [], ["WHERE"]),
    ("SELECT * FROM " + SYN + " /* open comment ", None, [], ["WHERE"]),
    ("SHOW TABLES; SELECT * FROM nu", None, [NUC], []),
    ("SELECT * FROM nu; SHOW TABLES", 16, [NUC], []),
    ("\\", None, ["\\dt", "\\d", "\\timing", "\\x", "\\T", "\\o", "\\i", "\\e", "\\set", "\\explain", "\\?", "\\q"], []),
    ("\\ti", None, ["\\timing"], []),
    ("\\d ", None, [SYN, NUC], []),
    ("\\T js", None, ["json", "jsonl"], ["csv"]),
    ("\\x ", None, ["on", "off", "auto"], []),
    ("\\set ", None, ["root_id", "ids"], []),
    ("SELECT 12", None, [], ["SELECT"]),
    ("SELECT * FROM " + SYN + " WHERE size > 1 AND ", None, ["NOT", "size", "ABS("], ["WHERE"]),
    ('SELECT * FROM "' + SYN + '" s WHERE s.', None, ["size"], []),
    ("SELECT * FROM unknown_t WHERE ", None, ["NOT"], []),
    ("SELECT * FROM " + SYN + " WHERE size IN (SELECT ", None, ["COUNT("], []),
    ("SELECT * FROM " + SYN + " s WHERE s.pre_pt_root_id IN (SELECT pt_root_id FROM " + CT + " c WHERE c.",
     None, ["cell_type"], []),
    ("SELECT * FROM " + NUC + " WHERE pt_position WITHIN ", None, ["BOX"], []),
    ("select * from " + SYN + " wh", None, ["where"], ["WHERE"]),
    ('SELECT * FROM "synapses', None, [SYN], []),
    ("SELECT * FROM " + SYN + " s JOIN " + CT + " c ON ", None,
     ["s.pre_pt_root_id = c.pt_root_id", "s.post_pt_root_id = c.pt_root_id"], ["s.id = c.id"]),
    ("SELECT * FROM " + SYN + " s JOIN " + CT + " pre ON s.pre_pt_root_id = pre.pt_root_id JOIN " + CT
     + " post ON ", None, ["s.post_pt_root_id = post.pt_root_id", "pre.pt_root_id = post.pt_root_id"], []),
]


@pytest.mark.parametrize(("text", "cursor", "must", "must_not"), CASES)
def test_suggest(cat: CompletionCatalog, text: str, cursor: int | None, must: list[str],
                 must_not: list[str]) -> None:
    got = texts(text, cat, cursor)
    for m in must:
        assert m in got, (m, got[:20])
    for m in must_not:
        assert m not in got, (m, got[:20])


def test_at_least_40_cases() -> None:
    assert len(CASES) >= 40


def test_replacement_start_covers_the_word(cat: CompletionCatalog) -> None:
    c = suggest("SELECT * FROM snp", 17, cat)[0]
    assert c.start == -3 and c.kind == "table"
    c = suggest("SELECT * FROM " + CT + " WHERE cell_type = 'B", 100, cat)[0]
    assert c.start == -1 and c.kind == "value"


def test_prefix_before_fuzzy_and_names_before_keywords(cat: CompletionCatalog) -> None:
    got = texts("SELECT * FROM " + SYN + " WHERE s", cat)
    assert got[0] == "size"
    assert got.index("size") < got.index("sqrt(")


def test_usage_ranks_frequent_names_first(cat: CompletionCatalog) -> None:
    cat.usage["nucleus_detection_v0"] = 5
    assert texts("SELECT * FROM ", cat)[0] == NUC


def test_lazy_columns_loaded_once(cat: CompletionCatalog) -> None:
    calls: list[str] = []
    lazy = CompletionCatalog(tables=[SYN], load_columns=lambda t: calls.append(t) or [("size", "int")])
    assert "size" in texts("SELECT  FROM " + SYN, lazy, 7)
    assert "size" in texts("SELECT * FROM " + SYN + " WHERE ", lazy)
    assert calls == [SYN]


def test_loader_failures_do_not_break_completion() -> None:
    def boom(*a: object) -> list[tuple[str, str]]:
        raise RuntimeError("network down")

    lazy = CompletionCatalog(tables=[SYN], load_columns=boom, load_values=boom)
    assert "COUNT(" in texts("SELECT  FROM " + SYN, lazy, 7)
    assert texts("SELECT * FROM " + SYN + " WHERE x = '", lazy) == []


def test_file_completion(tmp_path, monkeypatch, cat: CompletionCatalog) -> None:
    (tmp_path / "bc_inputs.cql").write_text("")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    assert texts("\\i bc", cat) == ["bc_inputs.cql"]
    assert "sub/" in texts("\\o ", cat)


def test_fuzzy_rank() -> None:
    assert fuzzy_rank("pid", ["pt_root_id", "pre_pt_root_id", "id"]) == ["pt_root_id", "pre_pt_root_id"]
    assert fuzzy_rank("ID", ["id", "x_id"]) == ["id", "x_id"]
    assert fuzzy_rank("zz", ["a"]) == []


@given(st.text(alphabet="SELCT *FROMWHEsynap_.,'():=\\ 0123;", max_size=60), st.integers(0, 60))
def test_never_raises(text: str, cursor: int) -> None:
    cat = CompletionCatalog(tables=[SYN], columns={SYN: [("size", "int")]}, values={(SYN, "size"): ["1"]})
    for c in suggest(text, cursor, cat):
        assert c.start <= 0 and -c.start <= min(cursor, len(text))


def test_join_condition_first_after_on(cat: CompletionCatalog) -> None:
    got = texts("SELECT * FROM " + SYN + " s JOIN " + CT + " c ON ", cat)
    assert got[:2] == ["s.pre_pt_root_id = c.pt_root_id", "s.post_pt_root_id = c.pt_root_id"]


def test_star_expansion(cat: CompletionCatalog) -> None:
    [c] = suggest("SELECT * FROM " + NUC, 8, cat)
    assert c.text == "id, volume, pt_root_id, pt_position" and c.start == -1 and c.kind == "expansion"
    text = "SELECT s.*, c.cell_type FROM " + SYN + " s JOIN " + CT + " c ON s.post_pt_root_id = c.pt_root_id"
    [c] = suggest(text, 10, cat)
    assert c.text.startswith("s.id, s.size, s.pre_pt_root_id") and c.start == -3
    text = "SELECT * FROM " + SYN + " s JOIN " + CT + " c ON s.post_pt_root_id = c.pt_root_id"
    [c] = suggest(text, 8, cat)
    assert c.text.startswith("s.id, ") and "c.cell_type" in c.text
    assert suggest("SELECT x.* FROM " + SYN, 10, cat) == []
    assert [c.text for c in suggest("SELECT 2 * ", 11, cat)][:1] != ["id"]  # multiplication, not a star
