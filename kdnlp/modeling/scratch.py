"""A sequence-to-sequence model folder to train from scratch: a config and a tokenizer trained on the task's texts.

No pretrained seq2seq model is available offline, so a translation teacher is trained from random weights. The
folder holds no weights: `AutoModelForSeq2SeqLM.from_config(AutoConfig.from_pretrained(folder))` builds the model.
Source and target share one vocabulary (and the architectures tie their embeddings), which suits language pairs
that share a script, such as Multi30k's English-German.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kdnlp.core.errors import KdnlpError
from kdnlp.core.run import RunFolder

#: arch -> the model class its config names (what `AutoModelForSeq2SeqLM` builds from it).
ARCHS = {"marian": "MarianMTModel", "bart": "BartForConditionalGeneration", "t5": "T5ForConditionalGeneration"}
#: Special tokens, in id order: padding is 0, end of text 1, unknown 2 (T5's own layout).
SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")
#: A byte-level vocabulary holds the 256 bytes and the special tokens before any merge.
MIN_VOCAB = 256 + len(SPECIAL_TOKENS)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8000, lowercase: bool = False):
    """A byte-level BPE tokenizer (GPT-2's and BART's kind) trained on `texts`, ending every text with `</s>`.

    Byte-level rather than whitespace pre-tokenisation + BPE: it keeps the spaces inside its tokens, so decoding
    gives back the text exactly (a whitespace pre-tokeniser forgets whether a comma followed a space), and any
    character, however rare, is spelled in bytes instead of becoming `<unk>`. Frequent non-ASCII letters (German
    umlauts, ß) are merged into tokens like any other pair of bytes. Texts are NFC-normalised first, so composed and
    decomposed umlauts get the same tokens; `lowercase` also lowercases them.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < MIN_VOCAB:
        raise KdnlpError(f"vocab_size {vocab_size} is too small: a byte-level vocabulary needs at least {MIN_VOCAB} "
                         f"(256 bytes and {len(SPECIAL_TOKENS)} special tokens)")
    pad, eos, unk = SPECIAL_TOKENS
    tok = Tokenizer(models.BPE(unk_token=unk))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()] if lowercase else [normalizers.NFC()])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(single=f"$A {eos}", pair=f"$A {eos} $B {eos}",
                                                       special_tokens=[(eos, tok.token_to_id(eos))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=pad, eos_token=eos, unk_token=unk,
                                   clean_up_tokenization_spaces=False)


def model_config(arch: str, vocab_size: int, d_model: int = 256, encoder_layers: int = 3, decoder_layers: int = 3,
                 heads: int = 4, ffn_dim: int = 1024, max_position_embeddings: int = 256, dropout: float = 0.1,
                 pad_token_id: int = 0, eos_token_id: int = 1):
    """The config of a transformer encoder-decoder of architecture `arch` (marian, bart or t5).

    Decoding starts from the pad token for Marian and T5 (as their pretrained models do) and from `</s>` for BART;
    generation is forced to end with `</s>`. There is no beginning-of-text token.
    """
    import transformers

    if arch not in ARCHS:
        raise KdnlpError(f"unknown architecture '{arch}'; valid: {', '.join(ARCHS)}")
    sizes = {"d_model": d_model, "encoder_layers": encoder_layers, "decoder_layers": decoder_layers, "heads": heads,
             "ffn_dim": ffn_dim, "max_position_embeddings": max_position_embeddings}
    bad = next((k for k, v in sizes.items() if v < 1), None)
    if bad is not None:
        raise KdnlpError(f"bad value {sizes[bad]} for {bad}: must be at least 1")
    if d_model % heads:
        raise KdnlpError(f"d_model {d_model} is not a multiple of heads {heads}")
    ids: dict[str, Any] = {"pad_token_id": pad_token_id, "eos_token_id": eos_token_id}
    common = {"vocab_size": vocab_size, "d_model": d_model, "architectures": [ARCHS[arch]], **ids}
    if arch == "t5":
        return transformers.T5Config(**common, d_kv=d_model // heads, d_ff=ffn_dim, num_layers=encoder_layers,
                                     num_decoder_layers=decoder_layers, num_heads=heads, dropout_rate=dropout,
                                     decoder_start_token_id=pad_token_id)
    layers = {"encoder_layers": encoder_layers, "decoder_layers": decoder_layers, "encoder_attention_heads": heads,
              "decoder_attention_heads": heads, "encoder_ffn_dim": ffn_dim, "decoder_ffn_dim": ffn_dim,
              "max_position_embeddings": max_position_embeddings, "dropout": dropout,
              "forced_eos_token_id": eos_token_id, "bos_token_id": None}
    if arch == "marian":  # sinusoidal positions, embeddings scaled by sqrt(d_model) as in Marian's own models
        return transformers.MarianConfig(**common, **layers, decoder_start_token_id=pad_token_id, scale_embedding=True)
    return transformers.BartConfig(**common, **layers, decoder_start_token_id=eos_token_id)


def new_model_folder(output_dir: str | os.PathLike, texts: Iterable[str], arch: str = "marian", vocab_size: int = 8000,
                     d_model: int = 256, encoder_layers: int = 3, decoder_layers: int = 3, heads: int = 4,
                     ffn_dim: int = 1024, max_position_embeddings: int = 256, overwrite: bool = False,
                     lowercase: bool = False, dropout: float = 0.1) -> Path:
    """Writes a model folder without weights: config.json, generation_config.json and a tokenizer trained on `texts`
    (give the source and the target texts: the vocabulary is shared). Returns its path."""
    from transformers import GenerationConfig

    sizes = {"d_model": d_model, "encoder_layers": encoder_layers, "decoder_layers": decoder_layers, "heads": heads,
             "ffn_dim": ffn_dim, "max_position_embeddings": max_position_embeddings, "dropout": dropout}
    model_config(arch, MIN_VOCAB, **sizes)  # bad sizes are reported before the tokenizer is trained
    folder = RunFolder(output_dir, overwrite)
    tokenizer = train_tokenizer(texts, vocab_size, lowercase)
    tokenizer.model_max_length = max_position_embeddings
    config = model_config(arch, len(tokenizer), **sizes, pad_token_id=tokenizer.pad_token_id,
                          eos_token_id=tokenizer.eos_token_id)
    work = folder.start({"command": "new-model", "arch": arch, "vocab_size": vocab_size, "lowercase": lowercase, **sizes})
    config.save_pretrained(work)
    generation = GenerationConfig.from_model_config(config)
    generation.max_length = max_position_embeddings
    generation.save_pretrained(work)
    tokenizer.save_pretrained(work)
    return folder.finish()
