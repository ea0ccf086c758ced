"""TinyBERT augmentation with a tiny masked LM trained here so that its predictions for one slot are known."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import tiny_config
from test_cli import assert_user_error, kdnlp
from kdnlp.tools.augment import augment_glue, augment_texts, load_fill_mask, word_candidates
from kdnlp.tasks.glue.data import get_task, load_split, read_tsv, write_tsv
from kdnlp.core.errors import KdnlpError

ADJECTIVES = ["good", "great", "fine", "nice"]
TEMPLATE = "the movie was {} today"
TEXT = TEMPLATE.format("good")
ODD = "zorbly"  # not in the vocabulary: the tokenizer splits it into pieces


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A tiny model is fastest on one thread: more threads only add overhead (and wait on a busy machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory, tokenizer) -> Path:
    """A 2-layer BERT masked LM taught that TEMPLATE's words are fixed but for the slot, which holds an adjective."""
    import torch
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    config = tiny_config(layers=2, heads=2)
    config.architectures = ["BertForMaskedLM"]
    model = BertForMaskedLM(config)
    seqs = [tokenizer(TEMPLATE.format(a))["input_ids"] for a in ADJECTIVES]
    inputs, labels = [], []
    for seq in seqs:
        for pos in range(1, len(seq) - 1):
            inputs.append(seq[:pos] + [tokenizer.mask_token_id] + seq[pos + 1:])
            labels.append([-100] * pos + [seq[pos]] + [-100] * (len(seq) - pos - 1))
    inputs, labels = torch.tensor(inputs), torch.tensor(labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(40):
        optimizer.zero_grad()
        model(input_ids=inputs, labels=labels).loss.backward()
        optimizer.step()
    path = tmp_path_factory.mktemp("mlm")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def mlm(mlm_dir):
    return load_fill_mask(str(mlm_dir))


@pytest.fixture(scope="module")
def glove(tmp_path_factory) -> Path:
    """ODD's nearest words are blorf then quux; ZORBLY is nearer still but is ODD itself in other case."""
    path = tmp_path_factory.mktemp("vectors") / "glove.txt"
    path.write_text(f"{ODD} 1 0 0\nfar 0 0 1\nquux 0.7 0.7 0\nZORBLY 1 0 0.01\nblorf 0.9 0.1 0\ngood 0 1 0\n")
    return path


def test_single_piece_words_get_the_lm_top_m_without_themselves(mlm):
    model, tok = mlm
    slot = TEXT.split().index("good")
    texts = [TEXT, TEXT.replace("good", "Good")]
    three, four = (word_candidates(texts, model, tok, m=m, progress=False) for m in (3, 4))
    assert set(three[0][slot]) == set(ADJECTIVES) - {"good"}
    assert three[1][slot] == three[0][slot]  # the uncased tokenizer lowercases before the lookup
    assert four[0][slot][:3] == three[0][slot] and four[0][slot][3] not in ADJECTIVES
    for word, cands in zip(TEXT.split(), four[0]):
        assert len(cands) == 4 and word not in cands
        for cand in cands:
            assert tok.convert_tokens_to_ids(cand) not in tok.all_special_ids
            assert tok.tokenize(cand) == [cand]  # a whole word: no '##' piece, no [unused] slot


def test_multi_piece_words_get_word_vector_neighbours_only(mlm, glove):
    model, tok = mlm
    assert len(tok.tokenize(ODD)) > 1
    text = f"{ODD} movie was good"
    plain, near = (word_candidates([text], model, tok, m=2, word_vectors=v, progress=False)[0] for v in (None, glove))
    assert plain[0] == [] and near[0] == ["blorf", "quux"]
    assert near[1:] == plain[1:]  # single-piece words keep the LM's candidates, though "good" has a vector


def test_bad_word_vector_files(mlm, tmp_path):
    model, tok = mlm
    bad = tmp_path / "bad.txt"
    bad.write_text("a 1 2\nb 1 x\n")
    with pytest.raises(KdnlpError, match=r"bad.txt:2: expected a word and 2 numbers"):
        word_candidates([ODD], model, tok, word_vectors=bad, progress=False)
    with pytest.raises(KdnlpError, match="word-vector file .*missing.txt' does not exist"):
        word_candidates([ODD], model, tok, word_vectors=tmp_path / "missing.txt", progress=False)


def test_p_zero_keeps_texts_and_p_one_changes_every_word_with_candidates(mlm):
    model, tok = mlm
    texts = [TEXT, f"{ODD} movie"]
    assert augment_texts(texts, model, tok, p=0, n=5, m=3, progress=False) == [[], []]
    assert augment_texts(texts, None, tok, p=0, n=5, m=3, progress=False) == [[], []]  # the model is not run
    changed = augment_texts(texts, model, tok, p=1, n=10, m=3, progress=False)
    assert len(changed[0]) > 1 and changed[1]
    for text, new in zip(texts, changed):
        for draw in new:
            pairs = list(zip(text.split(), draw.split(), strict=True))
            assert all((old == cur) == (old == ODD) for old, cur in pairs)


def test_same_seed_same_texts_and_n_bounds_the_count(mlm):
    model, tok = mlm
    runs = [augment_texts([TEXT], model, tok, p=0.5, n=8, m=3, seed=s, progress=False)[0] for s in (7, 7, 8)]
    assert runs[0] == runs[1] and runs[0] != runs[2]
    for n in (1, 3, 8):
        new = augment_texts([TEXT], model, tok, p=0.5, n=n, m=3, batch_size=2, progress=False)[0]
        assert 1 <= len(new) <= n and len(set(new)) == len(new) and TEXT not in new


@pytest.mark.parametrize("bad, message", [({"p": 1.5}, "bad p 1.5"), ({"n": 0}, "bad n 0"), ({"m": 0}, "bad m 0")])
def test_bad_settings(mlm, bad, message):
    with pytest.raises(KdnlpError, match=message):
        augment_texts([TEXT], *mlm, **({"progress": False} | bad))


def test_load_fill_mask_refuses_models_without_a_mask_token_or_masked_lm_head(minilm_path, tmp_path):
    from transformers import BertForMaskedLM, BertTokenizer

    with pytest.raises(KdnlpError, match="has no trained masked-LM head"):
        load_fill_mask(minilm_path)  # a sentence encoder saved without its pre-training head
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good"])}
    BertForMaskedLM(tiny_config(layers=1, heads=2, vocab_size=len(vocab))).save_pretrained(tmp_path)
    BertTokenizer(vocab=vocab, mask_token=None).save_pretrained(tmp_path)
    with pytest.raises(KdnlpError, match="has no mask token"):
        load_fill_mask(str(tmp_path))


@pytest.mark.parametrize("task, columns", [
    ("cola", {"sentence": ["It rains.", "Rains it\tdoes\nnot."], "label": [1, 0]}),
    ("sst2", {"sentence": ['a "quoted word ', "fine"], "label": [0, 1]}),
    ("mrpc", {"sentence1": ["one", "two"], "sentence2": ["uno", "dos"], "label": [1, 0]}),
    ("rte", {"sentence1": ["a", "b"], "sentence2": ["c", "d"], "label": [0, 1]}),
    ("stsb", {"sentence1": ["a", "b"], "sentence2": ["c", "d"], "label": [4.75, 0.0]}),
    ("sst2", {"sentence": ["unlabeled", "test"], "label": [-1, -1]}),
])
def test_write_tsv_round_trips_with_read_tsv(tmp_path, task, columns):
    spec = get_task(task)
    write_tsv(spec, columns, tmp_path / "x.tsv")
    back = read_tsv(spec, tmp_path / "x.tsv")
    clean = {k: [v.replace("\t", " ").replace("\n", " ") if isinstance(v, str) else v for v in vs]
             for k, vs in columns.items()}
    assert {k: back[k] for k in columns} == clean


def test_write_tsv_writes_rte_labels_as_names_and_round_trips_headerless_cola(tmp_path):
    write_tsv(get_task("rte"), {"sentence1": ["a"], "sentence2": ["b"], "label": [1]}, tmp_path / "rte.tsv")
    assert (tmp_path / "rte.tsv").read_text().splitlines()[1].split("\t")[-1] == "not_entailment"
    cola = get_task("cola")
    (tmp_path / "orig.tsv").write_text("gj04\t1\t\tThe sailors rode.\ngj04\t0\t*\tRode the sailors.\n")
    first = read_tsv(cola, tmp_path / "orig.tsv")
    write_tsv(cola, first, tmp_path / "copy.tsv")
    assert read_tsv(cola, tmp_path / "copy.tsv") == first
    with pytest.raises(KdnlpError, match="row 1: label 2 is not a cola class index"):
        write_tsv(cola, {"sentence": ["x"], "label": [2]}, tmp_path / "bad.tsv")


@pytest.fixture(scope="module")
def glue(tmp_path_factory) -> Path:
    """A tiny GLUE folder: SST-2 and MRPC (a pair task with a BOM header and extra columns)."""
    root = tmp_path_factory.mktemp("glue")
    (root / "SST-2").mkdir()
    rows = "".join(f"{TEMPLATE.format(a)}\t{i % 2}\n" for i, a in enumerate(ADJECTIVES))
    (root / "SST-2" / "train.tsv").write_text("sentence\tlabel\n" + rows + f"{ODD}\t1\n")
    (root / "SST-2" / "dev.tsv").write_text("sentence\tlabel\nthe movie\t1\n")
    (root / "MRPC").mkdir()
    head = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    pairs = "".join(f"{i % 2}\t{i}\t{i + 9}\t{TEMPLATE.format(a)}\tthe film was {a}\n"
                    for i, a in enumerate(ADJECTIVES))
    (root / "MRPC" / "train.tsv").write_text(head + pairs)
    (root / "MRPC" / "dev.tsv").write_text(head + "1\t1\t2\tthe movie\tthe film\n")
    return root


@pytest.mark.parametrize("task", ["sst2", "mrpc"])
def test_augment_glue_writes_originals_then_their_augmentations(mlm_dir, mlm, glue, tmp_path, task):
    spec = get_task(task)
    out = tmp_path / "aug"
    result = augment_glue(task, str(glue), out, str(mlm_dir), p=0.5, n=4, m=3, seed=3)
    original = load_split(spec, "train", str(glue))
    expected = augment_texts(original[spec.keys[0]], *mlm, p=0.5, n=4, m=3, seed=3, progress=False)
    written = load_split(spec, "train", str(out))
    assert result["examples"] == len(original) and result["written"] == len(written)
    assert len(written) == len(original) + sum(map(len, expected)) > len(original)
    assert result["path"] == str(out / spec.folder / "train.tsv")
    row = 0
    for example, new in zip(original, expected):
        for text in [example[spec.keys[0]], *new]:
            got = written[row]
            assert got[spec.keys[0]] == text and got["label"] == example["label"]
            assert all(got[k] == example[k] for k in spec.keys[1:])
            row += 1
    assert (out / spec.folder / "dev.tsv").read_bytes() == (glue / spec.folder / "dev.tsv").read_bytes()
    assert load_split(spec, "validation", str(out))[:] == load_split(spec, "validation", str(glue))[:]
    assert not (tmp_path / "aug.partial").exists()


def test_cli_writes_the_folder_then_refuses_to_overwrite_it(mlm_dir, glue, tmp_path):
    out = tmp_path / "cli"
    args = ["--task", "sst2", "--model", mlm_dir, "--data-dir", glue, "--output-dir", out, "--n", "2", "--m", "3"]
    done = kdnlp("augment", *args)
    assert done.returncode == 0, done.stderr
    written = len(load_split(get_task("sst2"), "train", str(out)))
    assert done.stdout.strip() == f"sst2 train: 5 examples in, {written} written to {out / 'SST-2' / 'train.tsv'}"
    assert_user_error(kdnlp("augment", *args), "exists and is not empty", "--overwrite")
    assert_user_error(kdnlp("augment", *args, "--p", "1.5", "--overwrite"), "bad p 1.5")
