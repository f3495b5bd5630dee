"""The evaluation clips the client tests send, by id."""

from __future__ import annotations

SHORT_KO = "ko_deeply_sub100111a00054"
SHORT_EN = "en_jfk"
LONG_EN = "en_long_ljspeech_LJ001"
