"""Text pairs from every layout `load_pairs` reads: parallel files, JSON lines, saved datasets; and its errors."""
from __future__ import annotations

import json

import pytest

from conftest import SHARED
from kdnlp.tasks.seq2seq.data import load_pairs
from kdnlp.core.errors import KdnlpError

SEQ2SEQ = SHARED / "seq2seq"
EN = ["A man in an orange hat.", "  Two dogs  run.", "", "A girl on a swing."]
DE = ["Ein Mann mit einem orangefarbenen Hut.", "Zwei Hunde laufen über das Gras.", "Leer?", "Ein Mädchen schaukelt."]


def write(path, lines, end="\n"):
    path.write_bytes("".join(line + end for line in lines).encode("utf-8"))


def pairs(ds):
    return list(zip(ds["source"], ds["target"]))


def test_parallel_files_by_language_keep_order_and_inner_whitespace(tmp_path):
    write(tmp_path / "train.en", EN)
    write(tmp_path / "train.de", DE, end="\r\n")
    ds = load_pairs(str(tmp_path), "train", "en", "de")
    assert ds.column_names == ["source", "target"]
    assert pairs(ds) == list(zip(EN, DE))
    assert pairs(load_pairs(str(tmp_path), "train", "de", "en")) == list(zip(DE, EN))


def test_source_target_files_need_no_language(tmp_path):
    write(tmp_path / "train.source", EN)
    write(tmp_path / "train.target", DE)
    assert pairs(load_pairs(str(tmp_path), "train")) == list(zip(EN, DE))


@pytest.mark.parametrize("prefix", ["val", "valid", "validation", "dev"])
def test_validation_prefixes(tmp_path, prefix):
    write(tmp_path / "train.en", ["train"])
    write(tmp_path / "train.de", ["Zug"])
    write(tmp_path / f"{prefix}.en", EN[:2])
    write(tmp_path / f"{prefix}.de", DE[:2])
    assert pairs(load_pairs(str(tmp_path), "validation", "en", "de")) == list(zip(EN[:2], DE[:2]))


def test_one_test_file_by_any_name_but_several_are_an_error(tmp_path):
    write(tmp_path / "test_2016_flickr.en", EN[:1])
    write(tmp_path / "test_2016_flickr.de", DE[:1])
    assert pairs(load_pairs(str(tmp_path), "test", "en", "de")) == [(EN[0], DE[0])]
    write(tmp_path / "test_2017_mscoco.en", EN[1:2])
    write(tmp_path / "test_2017_mscoco.de", DE[1:2])
    with pytest.raises(KdnlpError, match="several test files .*test_2016_flickr.en, test_2017_mscoco.en; use a folder"):
        load_pairs(str(tmp_path), "test", "en", "de")
    write(tmp_path / "test.en", EN[3:4])  # the plain name wins over the others
    write(tmp_path / "test.de", DE[3:4])
    assert pairs(load_pairs(str(tmp_path), "test", "en", "de")) == [(EN[3], DE[3])]


def test_parallel_file_errors(tmp_path):
    write(tmp_path / "train.en", EN)
    write(tmp_path / "train.de", DE[:3])
    with pytest.raises(KdnlpError, match=r"train.en' has 4 lines but '.*train.de' has 3"):
        load_pairs(str(tmp_path), "train", "en", "de")
    with pytest.raises(KdnlpError, match="has no parallel file 'train.fr'"):
        load_pairs(str(tmp_path), "train", "en", "fr")
    (tmp_path / "train.de").write_bytes("Gr\xfc\xdfe\n".encode("latin-1") * 4)
    with pytest.raises(KdnlpError, match=r"train.de' is not UTF-8 text \(byte 2\)"):
        load_pairs(str(tmp_path), "train", "en", "de")
    with pytest.raises(KdnlpError, match=r"no validation data in .*expected \{val\|valid\|validation\|dev\}.en and .de.*"
                                         "it holds train.de, train.en"):
        load_pairs(str(tmp_path), "validation", "en", "de")
    (tmp_path / "test.en").write_text("")
    (tmp_path / "test.de").write_text("")
    with pytest.raises(KdnlpError, match="the test split of .* is empty"):
        load_pairs(str(tmp_path), "test", "en", "de")


def test_argument_errors(tmp_path):
    with pytest.raises(KdnlpError, match="unknown split 'dev'; valid: train, validation, test"):
        load_pairs(str(tmp_path), "dev", "en", "de")
    with pytest.raises(KdnlpError, match="give both source and target, not only 'en'"):
        load_pairs(str(tmp_path), "train", "en")
    with pytest.raises(KdnlpError, match="data folder '/no/such/folder' does not exist"):
        load_pairs("/no/such/folder", "train", "en", "de")
    (tmp_path / "notes.txt").write_text("x\n")
    with pytest.raises(KdnlpError, match="neither a folder nor a .json/.jsonl file"):
        load_pairs(str(tmp_path / "notes.txt"), "train", "en", "de")


def test_hub_id_offline_says_to_pass_a_folder():
    with pytest.raises(KdnlpError, match="could not load the Hub dataset 'wmt16:de-en' .*pass a local folder"):
        load_pairs("wmt16:de-en", "train", "de", "en")


ROWS = [{"translation": {"en": e, "de": d}} for e, d in zip(EN, DE)]


@pytest.mark.parametrize("name", ["train.json", "train.jsonl"])
def test_json_lines_with_translations(tmp_path, name):
    (tmp_path / name).write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS) + "\n\n")
    assert pairs(load_pairs(str(tmp_path), "train", "en", "de")) == list(zip(EN, DE))
    with pytest.raises(KdnlpError, match="has no language 'fr'; languages: de, en"):
        load_pairs(str(tmp_path), "train", "fr", "de")
    with pytest.raises(KdnlpError, match="holds translations in de, en; pass source and target language codes"):
        load_pairs(str(tmp_path), "train")


def test_json_columns_array_and_a_file_given_directly(tmp_path):
    rows = [{"document": d, "summary": s, "id": i} for i, (d, s) in enumerate(zip(DE, EN))]
    (tmp_path / "dev.json").write_text(json.dumps(rows))  # one JSON array
    assert pairs(load_pairs(str(tmp_path), "validation", "document", "summary")) == list(zip(DE, EN))
    assert pairs(load_pairs(str(tmp_path / "dev.json"), "train", "document", "summary")) == list(zip(DE, EN))
    with pytest.raises(KdnlpError, match="has no column 'text'; columns: document, summary, id"):
        load_pairs(str(tmp_path), "validation", "document", "text")
    with pytest.raises(KdnlpError, match="has the columns document, summary, id; pass source and target"):
        load_pairs(str(tmp_path), "validation")
    (tmp_path / "dev.json").write_text(json.dumps({"document": "a", "summary": "b"}) + "\n{\"document\": 3}\n")
    with pytest.raises(KdnlpError, match="row 2 holds 3 in 'document', not a text"):
        load_pairs(str(tmp_path), "validation", "document", "summary")
    (tmp_path / "dev.json").write_text("{\"document\": \n")
    with pytest.raises(KdnlpError, match="is not JSON lines"):
        load_pairs(str(tmp_path), "validation", "document", "summary")


def test_saved_dataset_dict_with_columns_or_translations(tmp_path):
    import datasets

    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"translation": [r["translation"] for r in ROWS]}),
        "validation": datasets.Dataset.from_dict({"en": EN[:2], "de": DE[:2]}),
    })
    dd.save_to_disk(str(tmp_path / "saved"))
    saved = str(tmp_path / "saved")
    assert pairs(load_pairs(saved, "train", "de", "en")) == list(zip(DE, EN))
    assert pairs(load_pairs(saved, "validation", "en", "de")) == list(zip(EN[:2], DE[:2]))
    with pytest.raises(KdnlpError, match="has no test split; its splits: train, validation"):
        load_pairs(saved, "test", "en", "de")


def test_max_samples_subsets_train_at_random_and_takes_the_head_elsewhere(tmp_path):
    import datasets

    lines = [f"sentence {i}" for i in range(50)]
    for prefix in ("train", "val"):
        write(tmp_path / f"{prefix}.source", lines)
        write(tmp_path / f"{prefix}.target", [s.upper() for s in lines])
    full = datasets.Dataset.from_dict({"source": lines, "target": [s.upper() for s in lines]})
    train = load_pairs(str(tmp_path), "train", max_samples=10, seed=3)
    assert list(train["source"]) == list(full.shuffle(seed=3).select(range(10))["source"]) != lines[:10]
    assert list(train["target"]) == [s.upper() for s in train["source"]]
    assert list(load_pairs(str(tmp_path), "validation", max_samples=10, seed=3)["source"]) == lines[:10]


def test_real_json_samples():
    folder = SEQ2SEQ / "wmt_en_ro_hf_sample" / "json"
    if not folder.is_dir():
        pytest.skip(f"the WMT en-ro sample is not at {folder} (set KDNLP_SHARED_DATA to the shared data folder)")
    counts = {split: len(load_pairs(str(folder), split, "en", "ro")) for split in ("train", "validation", "test")}
    assert counts == {"train": 11, "validation": 16, "test": 20}
    wmt16 = load_pairs(str(SEQ2SEQ / "wmt16_en_ro_hf_sample" / "sample.json"), "test", "en", "ro")
    assert wmt16[0] == {"source": "Membership of Parliament: see Minutes",
                        "target": "Componenţa Parlamentului: a se vedea procesul-verbal"}
    xsum = load_pairs(str(SEQ2SEQ / "xsum_hf_sample" / "sample.json"), "validation", "document", "summary")
    assert len(xsum) == 10 and xsum[0]["source"].startswith("The warning begins at 22:00 GMT")
    source_target = load_pairs(str(SEQ2SEQ / "wmt_en_ro_hf_sample"), "validation")
    assert len(source_target) == 16


def test_real_multi30k():
    folder = SEQ2SEQ / "multi30k_en_de"
    if not (folder / "train.en").is_file():
        pytest.skip(f"Multi30k is not at {folder} (set KDNLP_SHARED_DATA to the shared data folder)")
    counts = {split: len(load_pairs(str(folder), split, "en", "de")) for split in ("train", "validation", "test")}
    assert counts == {"train": 29000, "validation": 1014, "test": 1000}
    test = load_pairs(str(folder), "test", "en", "de")
    assert test[1]["target"] == "Ein Boston Terrier läuft über saftig-grünes Gras vor einem weißen Zaun."
    assert not any(s.endswith(("\n", "\r")) for s in [*test["source"], *test["target"]])
