"""Apple Health exports made for the tests: single records, small documents, and a large
export generated on the fly (so a test holds no big buffer)."""

from __future__ import annotations

import datetime
import io
import zipfile
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "export.xml"
PST = datetime.timezone(datetime.timedelta(hours=-8))

HEADER = b'<?xml version="1.0" encoding="UTF-8"?>\n<HealthData locale="en_US">\n'
FOOTER = b"</HealthData>\n"


def record(record_type, value, unit="", start="2024-03-01 08:00:00 -0800", end=None, source="Watch") -> bytes:
    end = end or start
    unit_attr = f' unit="{unit}"' if unit else ""
    return (
        f'<Record type="{record_type}" sourceName="{source}"{unit_attr} creationDate="{end}" '
        f'startDate="{start}" endDate="{end}" value="{value}"/>\n'
    ).encode()


def export(*records: bytes) -> io.BytesIO:
    return io.BytesIO(HEADER + b"".join(records) + FOOTER)


def zipped(xml: bytes, member: str = "apple_health_export/export.xml") -> bytes:
    """``xml`` as the Health app zips it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, xml)
    return buffer.getvalue()


class GeneratedExport:
    """A large export.xml made on the fly: ``records`` heart rates a minute apart from
    1 January 2020, and a step record every tenth minute (``broken_after``: stop there
    with malformed XML instead of closing the document)."""

    def __init__(self, records: int, *, broken_after: int | None = None) -> None:
        self.pieces = self._pieces(records, broken_after)
        self.pending = b""
        self.size = 0

    def _pieces(self, records, broken_after):
        yield HEADER
        start = datetime.datetime(2020, 1, 1, tzinfo=PST)
        for n in range(records):
            if n == broken_after:
                yield b'<Record type="HKQuantityTypeIdentifierHeartRate" value=<<broken\n'
                return
            moment = (start + datetime.timedelta(minutes=n)).strftime("%Y-%m-%d %H:%M:%S -0800")
            yield record("HKQuantityTypeIdentifierHeartRate", 50 + n % 60, "count/min", start=moment)
            if n % 10 == 0:
                yield record("HKQuantityTypeIdentifierStepCount", 100, "count", start=moment, source="iPhone")
        yield FOOTER

    def read(self, size=-1):
        while size < 0 or len(self.pending) < max(size, 1):
            piece = next(self.pieces, None)
            if piece is None:
                break
            self.pending += piece
        if size < 0:
            size = len(self.pending)
        data, self.pending = self.pending[:size], self.pending[size:]
        if self.size == 0:
            self.peeked = data  # the opener sniffs the first bytes, then seeks back
        self.size += len(data)
        return data

    def tell(self):
        return self.size

    def seek(self, position):
        assert position == 0 and self.size == len(self.peeked)
        self.pending, self.size = self.peeked + self.pending, 0

    def write_to(self, path: Path) -> Path:
        """Write the whole export to ``path`` (for uploads), piece by piece."""
        with path.open("wb") as out:
            while block := self.read(65_536):
                out.write(block)
        return path
