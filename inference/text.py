"""Text normalisation shared by training and inference.

One function, :func:`normalize_text`, is applied to every text before tokenisation, in
training, evaluation and prediction alike, so the model never sees text prepared differently
from what it was trained on.

What it does and why:

* Unicode NFKC: social-media "fancy fonts" (𝗖𝗢𝗕𝗟𝗢𝗦, ｃｏｂｌｏｓ) become plain letters, which
  the backbone's vocabulary knows.
* @mentions become ``@USER`` and URLs become ``HTTPURL`` (the IndoBERTweet convention): account
  names and links are mostly unique strings that the model would memorise, not learn from.
* Hand-gesture and keycap-number emoji become short Indonesian words (``✌️`` → ``emoji_dua_jari``,
  ``2️⃣`` → ``emoji_angka_2``). These are the partisan cues in the SKB 2022 gesture list, and BERT
  WordPiece vocabularies (IndoBERT included) map most emoji to ``[UNK]``, which would erase them.
  Other emoji are kept as they are: the tokenizer keeps those it knows.
* Runs of one character longer than three are cut to three (``mantaaaap`` → ``mantaaap``), so
  elongated spellings share tokens.
* Whitespace (including line breaks) collapses to single spaces.
* Case is left alone: lower-casing is the tokenizer's job (``do_lower_case`` of the backbone),
  and doing it here as well would hide cased backbones' signal.
"""

from __future__ import annotations

import re
import unicodedata

_URL_RE = re.compile(r"(?:https?://|www\.)\S+|\b[a-z0-9.-]+\.(?:com|id|net|org|co\.id|go\.id|ly)/\S*",
                     re.IGNORECASE)
_MENTION_RE = re.compile(r"(?<![\w.@])@[A-Za-z0-9_.]*[A-Za-z0-9_]")
_REPEAT_RE = re.compile(r"(.)\1{3,}")
_SPACE_RE = re.compile(r"\s+")

# Emoji that signal ballot numbers or partisan gestures. Keys are matched with and without
# the variation selector U+FE0F and skin-tone modifiers, which are stripped first.
_GESTURE_EMOJI = {
    "\u270c": "emoji_dua_jari",  # ✌ victory hand
    "\U0001f44d": "emoji_jempol",  # 👍
    "\u261d": "emoji_satu_jari",  # ☝
    "\U0001f446": "emoji_satu_jari",  # 👆
    "\U0001f448": "emoji_tunjuk",  # 👈
    "\U0001f449": "emoji_tunjuk",  # 👉
    "\U0001f44c": "emoji_oke",  # 👌
    "\U0001f91f": "emoji_tiga_jari",  # 🤟
    "\U0001f918": "emoji_metal",  # 🤘
    "\U0001f919": "emoji_telepon",  # 🤙
    "\U0001faf0": "emoji_finger_heart",  # 🫰
    "\u270a": "emoji_kepal",  # ✊
    "\U0001f44a": "emoji_kepal",  # 👊
    "\U0001f590": "emoji_lima_jari",  # 🖐
    "\u270b": "emoji_lima_jari",  # ✋
}
_SKIN_TONES = "".join(chr(c) for c in range(0x1F3FB, 0x1F400))
_STRIP_MODIFIERS = str.maketrans("", "", "\ufe0f" + _SKIN_TONES)
_KEYCAP_RE = re.compile("([0-9#*])\u20e3")


def _replace_emoji(text: str) -> str:
    text = _KEYCAP_RE.sub(lambda m: f" emoji_angka_{m.group(1)} ", text.translate(_STRIP_MODIFIERS))
    if any(ch in _GESTURE_EMOJI for ch in text):
        text = "".join(f" {_GESTURE_EMOJI[ch]} " if ch in _GESTURE_EMOJI else ch for ch in text)
    return text


def normalize_text(text: str) -> str:
    """Normalise one text the same way for training and inference (see module docstring).

    >>> normalize_text("Cek  @budi_99 https://t.co/x ✌️  mantaaaap")
    'Cek @USER HTTPURL emoji_dua_jari mantaaap'
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize_text expects str, got {type(text).__name__}")
    text = _replace_emoji(text)
    text = unicodedata.normalize("NFKC", text)
    text = _URL_RE.sub(" HTTPURL ", text)
    text = _MENTION_RE.sub(" @USER ", text)
    text = _REPEAT_RE.sub(lambda m: m.group(1) * 3, text)
    return _SPACE_RE.sub(" ", text).strip()
