"""The CSV connector's settings: the file, its Schema.xml, and the format to write it in.

The delimiter and the encoding are checked together when the configuration loads, so a
format that could not write its own header is refused before any file is touched.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from ecmahost.connectors.base import ConnectorSettings
from ecmahost.connectors.direction import DirectionSettings
from pydantic import Field, field_validator, model_validator

__all__ = ["CsvSettings"]


class CsvSettings(ConnectorSettings, DirectionSettings):
    """``path`` is the file, ``schema_file`` its Schema.xml; ``seed`` fills a missing file.
    ``import_only``/``export_only`` override the Schema.xml's AllowedAttributeOperation.
    ``lock_timeout_s`` bounds the wait for another process's hold of the file's lock
    (see ``file_lock``), after which the batch is retried later."""

    path: Path
    schema_file: Path
    seed: Path | None = None
    delimiter: str = ";"
    encoding: str = "utf-8"
    lock_timeout_s: float = Field(60.0, gt=0)

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"must be exactly one character, got {value!r}")
        if value in '"\r\n':
            raise ValueError(f"cannot be a double quote or a line break, got {value!r}")
        return value

    @field_validator("encoding")
    @classmethod
    def _text_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
            "".encode(value)  # refuses codecs that are not text encodings, such as rot13
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r}") from None
        return value

    @model_validator(mode="after")
    def _delimiter_encodable(self) -> CsvSettings:
        try:
            f'"{self.delimiter}"\n'.encode(self.encoding)
        except UnicodeEncodeError:
            raise ValueError(
                f"delimiter {self.delimiter!r} cannot be written in {self.encoding!r}"
            ) from None
        return self
