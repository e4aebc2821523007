"""The text pipeline: tokenizers, the frequency-capped vocabulary, run-bound vocabulary files,
padding, masks and the padding-blind loss."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from qrnn.errors import QRNNError
from qrnn.text import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIALS,
    UNK_ID,
    VOCAB_FILE,
    RunVocabularies,
    Tokenizer,
    Vocabulary,
    VocabularySpec,
    lengths_to_mask,
    masked_cross_entropy,
    pad_sequences,
    trim,
)

TEXTS = ["The cat sat.", "the cat ran!", "A dog sat", "the end"]


def test_word_tokenizer_splits_punctuation_and_keeps_specials():
    tokenize = Tokenizer("word")
    assert tokenize("Don't stop, <unk> Now!") == ["don't", "stop", ",", "<unk>", "now", "!"]
    assert Tokenizer("word", lowercase=False)("Hi there") == ["Hi", "there"]


def test_space_and_char_tokenizers():
    assert Tokenizer("space", lowercase=False)("the stock 's N %") == ["the", "stock", "'s", "N",
                                                                        "%"]
    assert Tokenizer("char")("神 光\n あれ") == ["神", " ", "光", " ", "あ", "れ"]
    assert Tokenizer("char").join(["a", " ", "b"]) == "a b"
    assert Tokenizer("word").join(["a", "b"]) == "a b"
    with pytest.raises(QRNNError, match="level must be one of"):
        Tokenizer("bytes")


def test_vocabulary_is_frequency_ranked_and_capped():
    vocab = VocabularySpec(Tokenizer("word"), max_size=7).build(TEXTS)
    assert vocab.tokens[: len(SPECIALS)] == SPECIALS
    # counts: the 3, cat 2, sat 2, then singletons; ties in alphabetical order
    assert vocab.tokens[len(SPECIALS):] == ("the", "cat", "sat")
    assert len(vocab) == 7
    assert vocab.encode("the dog") == [4, UNK_ID]
    assert vocab.encode("cat", bos=True, eos=True) == [BOS_ID, 5, EOS_ID]


def test_min_freq_maps_rare_tokens_to_unk():
    vocab = VocabularySpec(Tokenizer("word"), min_freq=2).build(TEXTS)
    assert set(vocab.tokens[len(SPECIALS):]) == {"the", "cat", "sat"}
    with pytest.raises(QRNNError, match="must exceed the 4 specials"):
        VocabularySpec(max_size=4)


def test_decode_stops_at_eos_and_drops_padding():
    vocab = VocabularySpec(Tokenizer("word")).build(TEXTS)
    ids = [BOS_ID, *vocab.encode("the cat sat"), EOS_ID, *vocab.encode("dog"), PAD_ID]
    assert vocab.decode(ids) == ["the", "cat", "sat"]
    assert vocab.to_text(ids) == "the cat sat"


def test_vocabulary_json_round_trip():
    vocab = VocabularySpec(Tokenizer("char", lowercase=False), max_size=20, min_freq=1).build(TEXTS)
    twin = Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert twin.tokens == vocab.tokens and twin.spec == vocab.spec
    assert twin.fingerprint() == vocab.fingerprint()
    assert twin.encode("Cat") == vocab.encode("Cat")


def test_run_vocabularies_are_saved_and_reloaded_without_the_data(tmp_path):
    spec = VocabularySpec(Tokenizer("word"), max_size=10)
    store = RunVocabularies()
    store.bind(tmp_path)
    built = store.get("tokens", spec, lambda: TEXTS)
    assert (tmp_path / VOCAB_FILE).exists()

    def no_data():
        raise AssertionError("the saved vocabulary must be reloaded, not rebuilt")

    again = RunVocabularies()
    again.bind(tmp_path)
    assert again.get("tokens", spec, no_data).tokens == built.tokens
    # a second vocabulary goes into the same file beside the first
    again.get("target", spec, lambda: ["other words entirely"])
    assert set(json.loads((tmp_path / VOCAB_FILE).read_text())) == {"tokens", "target"}


def test_run_vocabularies_refuse_another_spec(tmp_path):
    store = RunVocabularies()
    store.bind(tmp_path)
    store.get("tokens", VocabularySpec(Tokenizer("word"), max_size=10), lambda: TEXTS)
    other = RunVocabularies()
    other.bind(tmp_path)
    with pytest.raises(QRNNError, match="another run configuration"):
        other.get("tokens", VocabularySpec(Tokenizer("char"), max_size=10), lambda: TEXTS)


def test_padding_lengths_and_masks():
    ids, lengths = pad_sequences([[5, 6, 7], [8], [9, 10, 11, 12, 13]], length=4)
    assert ids.tolist() == [[5, 6, 7, 0], [8, 0, 0, 0], [9, 10, 11, 12]]
    assert lengths.tolist() == [3, 1, 4]
    mask = lengths_to_mask(lengths, 4)
    assert mask.tolist() == [[True, True, True, False], [True, False, False, False],
                             [True, True, True, True]]
    short, short_mask = trim(ids, torch.tensor([3, 1, 2]))
    assert short.shape == (3, 3) and short_mask.shape == (3, 3)


def test_masked_cross_entropy_ignores_padding():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 6)
    targets = torch.tensor([[4, 5, 1, PAD_ID], [2, PAD_ID, PAD_ID, PAD_ID]])
    real = targets != PAD_ID
    expected = F.cross_entropy(logits[real], targets[real])
    torch.testing.assert_close(masked_cross_entropy(logits, targets), expected)
    # whatever the logits at padded positions, the loss stays the same
    noisy = logits.clone()
    noisy[~real] = 100 * torch.randn_like(noisy[~real])
    torch.testing.assert_close(masked_cross_entropy(noisy, targets), expected)
    with pytest.raises(QRNNError, match="do not fit targets"):
        masked_cross_entropy(logits[:, :3], targets)
