"""A real CLIP tokenizer, built offline from the BPE merges that open_clip ships."""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from transformers import CLIPTokenizer

# CLIP's vocabulary: 256 byte tokens, their word-final forms, 48,894 merges, start and end tokens.
N_MERGES = 49152 - 256 - 2
CONTEXT_LENGTH = 77
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
PAD = "!"  # Stable Diffusion 2's tokenizer pads with "!" (id 0)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-to-printable-unicode table."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


def bpe_path() -> Path:
    """The gzipped BPE merges file inside the installed open_clip package."""
    import open_clip

    return Path(os.path.dirname(open_clip.__file__)) / "bpe_simple_vocab_16e6.txt.gz"


def write_clip_vocab(out_dir: str | Path) -> tuple[Path, Path]:
    """Write CLIP's vocab.json and merges.txt (as OpenAI and Stable Diffusion ship them) into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = gzip.open(bpe_path()).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : N_MERGES + 1]]
    byte_tokens = list(_bytes_to_unicode().values())
    vocab = byte_tokens + [t + "</w>" for t in byte_tokens] + ["".join(m) for m in merges] + [BOS, EOS]
    vocab_file, merges_file = out_dir / "vocab.json", out_dir / "merges.txt"
    vocab_file.write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    merges_file.write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return vocab_file, merges_file


def build_clip_tokenizer(out_dir: str | Path) -> CLIPTokenizer:
    """A CLIPTokenizer identical in vocabulary to Stable Diffusion 2's, saved to out_dir."""
    vocab_file, merges_file = write_clip_vocab(out_dir)
    merges = [tuple(m.split()) for m in merges_file.read_text().split("\n")[1:] if m]
    tok = CLIPTokenizer(
        vocab=json.loads(vocab_file.read_text()), merges=merges,
        bos_token=BOS, eos_token=EOS, unk_token=EOS, pad_token=PAD, model_max_length=CONTEXT_LENGTH,
    )
    tok.save_pretrained(str(out_dir))
    return tok
