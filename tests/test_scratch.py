"""Seq2seq model folders for training from scratch: the tokenizer, token ids per architecture, training, generating."""
from __future__ import annotations

import unicodedata

import pytest

from conftest import SHARED
from kdnlp.core.errors import KdnlpError
from kdnlp.modeling.scratch import new_model_folder, train_tokenizer

PAIRS = [
    ("A man in an orange hat staring at something.", "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt."),
    ("A Boston Terrier is running on lush green grass.", "Ein Boston Terrier läuft über saftig-grünes Gras."),
    ("A girl in karate uniform breaking a stick.", "Ein Mädchen in einem Karateanzug bricht einen Stock."),
    ("Five people in winter jackets and helmets.", "Fünf Leute in Winterjacken und mit Helmen."),
    ("People are fixing the roof of a house.", "Leute Reparieren das Dach eines Hauses."),
    ("A man in light colored clothing photographs a group.", "Ein hell gekleideter Mann fotografiert eine Gruppe."),
    ("A group of people standing in front of an igloo.", "Eine Gruppe von Menschen steht vor einem Iglu."),
    ("A boy in a red uniform is attempting to avoid getting out.", "Ein Junge in einem roten Trikot versucht, nicht aus zu sein."),
]
TEXTS = [text for pair in PAIRS for text in pair] * 3
SIZES = {"vocab_size": 400, "d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "heads": 4, "ffn_dim": 64,
         "max_position_embeddings": 64}


def multi30k_sentences(n: int) -> list[str]:
    folder = SHARED / "seq2seq" / "multi30k_en_de"
    if not (folder / "val.de").is_file():
        return []
    return [line for name in ("val.en", "val.de") for line in (folder / name).read_text("utf-8").splitlines()[:n]]


def test_tokenizer_special_tokens_end_of_text_and_exact_round_trip():
    tok = train_tokenizer(TEXTS, vocab_size=400)
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    assert tok.convert_ids_to_tokens([0, 1, 2]) == ["<pad>", "</s>", "<unk>"]
    assert 259 < len(tok) <= 400
    ids = tok("Ein Mädchen läuft.")["input_ids"]
    assert ids[-1] == tok.eos_token_id and tok.eos_token_id not in ids[:-1]
    assert tok.decode(ids).endswith("</s>")
    unseen = ["Größere Übungen für Jürgen, bitte!", "  two  spaces , odd  punctuation ;-)", "Café in Zürich — 3,5 €"]
    for text in [*TEXTS[:6], *unseen, *multi30k_sentences(200)]:
        assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    decomposed = unicodedata.normalize("NFD", "Mädchen")
    assert tok(decomposed)["input_ids"] == tok("Mädchen")["input_ids"]
    assert "Ã¤" in "".join(tok.convert_ids_to_tokens(tok("Mädchen läuft über")["input_ids"]))  # ä merged as bytes


def test_lowercase_tokenizer_and_bad_size():
    tok = train_tokenizer(TEXTS, vocab_size=300, lowercase=True)
    assert tok.decode(tok("Ein Mädchen LÄUFT")["input_ids"], skip_special_tokens=True) == "ein mädchen läuft"
    with pytest.raises(KdnlpError, match="vocab_size 100 is too small: a byte-level vocabulary needs at least 259"):
        train_tokenizer(TEXTS, vocab_size=100)


@pytest.mark.parametrize("arch, start", [("marian", "pad"), ("bart", "eos"), ("t5", "pad")])
def test_new_model_folder_loads_trains_and_generates(tmp_path, arch, start):
    import torch
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

    path = new_model_folder(tmp_path / "model", TEXTS, arch, **SIZES)
    assert path == tmp_path / "model" and not (tmp_path / "model.partial").exists()
    assert not list(path.glob("*.safetensors")) and (path / "generation_config.json").is_file()
    tok, config = AutoTokenizer.from_pretrained(path), AutoConfig.from_pretrained(path)
    assert config.model_type == arch and config.vocab_size == len(tok) and config.d_model == 32
    assert (config.pad_token_id, config.eos_token_id) == (tok.pad_token_id, tok.eos_token_id) == (0, 1)
    assert config.decoder_start_token_id == getattr(tok, f"{start}_token_id")
    if arch != "t5":
        assert config.forced_eos_token_id == tok.eos_token_id and config.max_position_embeddings == 64
    torch.manual_seed(0)
    model = AutoModelForSeq2SeqLM.from_config(config)
    assert (model.config.encoder_layers, model.config.decoder_layers) == (2, 2) if arch != "t5" else \
        (model.config.num_layers, model.config.num_decoder_layers) == (2, 2)
    sources, targets = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    batch = tok(sources, text_target=targets, padding=True, return_tensors="pt")
    batch["labels"][batch["labels"] == tok.pad_token_id] = -100
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    losses = []
    for _ in range(5):
        loss = model(**batch).loss
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert losses[-1] < losses[0] - 0.2, losses
    model.eval()
    enc = tok(sources[:2], padding=True, return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=6)
    assert out.shape[0] == 2 and (out[:, 0] == config.decoder_start_token_id).all()
    assert all(isinstance(t, str) for t in tok.batch_decode(out, skip_special_tokens=True))


def test_new_model_folder_errors_keep_what_exists(tmp_path):
    with pytest.raises(KdnlpError, match="unknown architecture 'gpt2'; valid: marian, bart, t5"):
        new_model_folder(tmp_path / "a", TEXTS, "gpt2", **SIZES)
    with pytest.raises(KdnlpError, match="d_model 30 is not a multiple of heads 4"):
        new_model_folder(tmp_path / "a", TEXTS, **{**SIZES, "d_model": 30})
    with pytest.raises(KdnlpError, match="bad value 0 for decoder_layers: must be at least 1"):
        new_model_folder(tmp_path / "a", TEXTS, **{**SIZES, "decoder_layers": 0})
    assert not (tmp_path / "a").exists() and not (tmp_path / "a.partial").exists()
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("precious")
    with pytest.raises(KdnlpError, match="exists and is not empty; pass --overwrite"):
        new_model_folder(tmp_path / "used", TEXTS, **SIZES)
    assert (tmp_path / "used" / "keep.txt").read_text() == "precious"
    new_model_folder(tmp_path / "used", TEXTS, "t5", overwrite=True, **SIZES)
    assert not (tmp_path / "used" / "keep.txt").exists() and (tmp_path / "used" / "config.json").is_file()
