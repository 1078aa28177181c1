"""Where each key of a TOML document stands: tomllib parses values but forgets positions.

Runs only when an error needs a line number, and only on text tomllib has already accepted, so
it can be a small scanner rather than a parser: it walks the text once, skipping strings and
comments, and records the 1-based (line, column) of every key, table header and array element
under its full path, e.g. ``("models", "image", "weights", "sha256")`` or ``(..., "resize", 1)``.
"""

from __future__ import annotations

KeyPath = tuple[str | int, ...]
Position = tuple[int, int]

_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.positions: dict[KeyPath, Position] = {}
        self._line_starts = [0]
        for index, char in enumerate(text):
            if char == "\n":
                self._line_starts.append(index + 1)

    # -- low-level helpers -------------------------------------------------------------
    def pos(self, index: int) -> Position:
        lo, hi = 0, len(self._line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._line_starts[mid] <= index:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, index - self._line_starts[lo] + 1

    def peek(self, n: int = 1) -> str:
        return self.text[self.i : self.i + n]

    def skip_inline_space(self) -> None:
        while self.peek() in (" ", "\t"):
            self.i += 1

    def skip_space_and_comments(self) -> None:
        while self.i < len(self.text):
            char = self.peek()
            if char in " \t\r\n":
                self.i += 1
            elif char == "#":
                self.skip_comment()
            else:
                break

    def skip_comment(self) -> None:
        end = self.text.find("\n", self.i)
        self.i = len(self.text) if end < 0 else end

    def record(self, path: KeyPath, index: int) -> None:
        self.positions.setdefault(path, self.pos(index))

    # -- keys and strings ------------------------------------------------------------
    def read_string(self) -> str:
        text, i = self.text, self.i
        for quote in ('"""', "'''"):
            if text.startswith(quote, i):
                end = text.find(quote, i + 3)
                while quote == '"""' and end > 0 and _escaped(text, end):
                    end = text.find(quote, end + 1)
                end = len(text) if end < 0 else end
                while text.startswith(quote[0], end + 3):  # up to two extra quotes belong inside
                    end += 1
                self.i = end + 3
                return text[i + 3 : end]
        quote = text[i]
        j = i + 1
        while j < len(text) and text[j] != quote:
            j += 2 if quote == '"' and text[j] == "\\" else 1
        self.i = j + 1
        return text[i + 1 : j]

    def read_key(self) -> list[tuple[str, int]]:
        """A dotted key: its parts with the index each part starts at."""
        parts: list[tuple[str, int]] = []
        while True:
            self.skip_inline_space()
            start = self.i
            if self.peek() in ('"', "'"):
                parts.append((self.read_string(), start))
            else:
                while self.i < len(self.text) and self.text[self.i] in _BARE:
                    self.i += 1
                parts.append((self.text[start : self.i], start))
            self.skip_inline_space()
            if self.peek() != ".":
                return parts
            self.i += 1

    # -- structure ---------------------------------------------------------------------
    def document(self) -> None:
        table: KeyPath = ()
        array_counts: dict[KeyPath, int] = {}
        while True:
            self.skip_space_and_comments()
            if self.i >= len(self.text):
                return
            if self.peek() == "[":
                table = self.header(array_counts)
            else:
                self.key_value(table)

    def header(self, array_counts: dict[KeyPath, int]) -> KeyPath:
        is_array = self.peek(2) == "[["
        self.i += 2 if is_array else 1
        parts = self.read_key()
        self.i += 2 if is_array else 1
        path: KeyPath = ()
        for name, start in parts:
            path = (*path, name)
            self.record(path, start)
        if is_array:
            index = array_counts.get(path, 0)
            array_counts[path] = index + 1
            path = (*path, index)
            self.record(path, parts[0][1])
        return path

    def key_value(self, table: KeyPath) -> None:
        path = table
        for name, start in self.read_key():
            path = (*path, name)
            self.record(path, start)
        self.skip_inline_space()
        if self.peek() == "=":
            self.i += 1
        self.value(path)

    def value(self, path: KeyPath) -> None:
        self.skip_inline_space()
        char = self.peek()
        if char == "{":
            self.inline_table(path)
        elif char == "[":
            self.array(path)
        elif char in ('"', "'"):
            self.read_string()
        else:
            while self.i < len(self.text) and self.text[self.i] not in ",]}\n#":
                self.i += 1

    def inline_table(self, path: KeyPath) -> None:
        self.i += 1
        while self.i < len(self.text):
            self.skip_space_and_comments()
            if self.peek() == "}":
                self.i += 1
                return
            if self.peek() == ",":
                self.i += 1
                continue
            self.key_value(path)

    def array(self, path: KeyPath) -> None:
        self.i += 1
        index = 0
        while self.i < len(self.text):
            self.skip_space_and_comments()
            if self.peek() == "]":
                self.i += 1
                return
            if self.peek() == ",":
                self.i += 1
                index += 1
                continue
            self.record((*path, index), self.i)
            self.value((*path, index))


def _escaped(text: str, index: int) -> bool:
    backslashes = 0
    while index - backslashes - 1 >= 0 and text[index - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def key_positions(text: str) -> dict[KeyPath, Position]:
    """Map every key path of a valid TOML document to the (line, column) where it is written."""
    scanner = _Scanner(text)
    scanner.document()
    return scanner.positions


def locate(positions: dict[KeyPath, Position], path: KeyPath) -> Position | None:
    """The position of ``path``, or of its nearest written ancestor (a missing key's table)."""
    for end in range(len(path), 0, -1):
        found = positions.get(path[:end])
        if found is not None:
            return found
    return None
