"""Reading a streamed `docker exec` line by line (the worker's reply parts ahead of its answer)."""

from perry_jupyter.core.engine import read_lines


def test_lines_split_across_chunks_are_whole_and_consumed_ones_are_left_out():
    accented = "héllo".encode()
    chunks = [(b'{"event": 1}\n{"ev', None), (None, b"a warning\n"), (b'ent": 2}\n' + accented[:2], None),
              (accented[2:] + b"\n", b"more\n"), (b'{"answer": true}', None)]
    seen = []

    def on_line(text):
        seen.append(text)
        return not text.startswith('{"event"')

    kept, err = read_lines(iter(chunks), on_line)
    assert seen == ['{"event": 1}', '{"event": 2}', "héllo", '{"answer": true}']
    assert kept.decode() == 'héllo\n{"answer": true}\n'
    assert err == b"a warning\nmore\n"
