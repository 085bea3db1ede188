"""A damaged dataset cache is noticed, said so, and decoded again: on real Omniglot under a
real `mtdsl run`, and for a file cut short."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
import torch

from conftest import ROOT
from mtdsl.data import cache

SPEC = """
import "{root}/specs/lib/models.mt"

experiment cached {{
  device: cpu
  data {{ train: omniglot(split: "val"), test: omniglot(split: "val") }}
  task {{ ways: 5, shots: 1, queries: 2 }}
  model: mlp(hidden: [16], classes: task.ways)
  params {{ "**": meta }}
  inner {{ steps: 1, lr: 0.4 }}
  outer {{ optimizer: sgd(lr: 0.1), iterations: 2 }}
  eval {{ test_tasks: 10 }}
}}
"""


def test_a_run_on_a_damaged_omniglot_cache_decodes_it_again(tmp_path, monkeypatch, omniglot_root):
    from mtdsl.data.omniglot import load_omniglot

    monkeypatch.setenv("MTDSL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MTDSL_DATA", str(omniglot_root))
    decoded = load_omniglot(None, "val", size=28)
    [file] = (tmp_path / "cache").glob("omniglot-val-*.pt")
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit pattern in the images: still a valid zip
    file.write_bytes(bytes(data))

    spec = tmp_path / "cached.mt"
    spec.write_text(SPEC.format(root=ROOT))
    r = subprocess.run([sys.executable, "-m", "mtdsl.cli.main", "run", str(spec), "--out", str(tmp_path / "run")],
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    text = r.stdout + r.stderr
    assert r.returncode == 0, text
    assert f"warning: the cached {file.name} in {file.parent} is damaged" in text, text
    assert "does not match its checksum" in text and "decoding it again" in text
    assert "Traceback" not in text and "UserWarning" not in text
    assert torch.equal(cache._load(file), decoded)  # rebuilt, and it passes its check


def test_a_cache_file_cut_short_is_decoded_again_with_a_warning(tmp_path):
    value = {"images": torch.arange(4000, dtype=torch.int32).reshape(4, 1000), "classes": ["a", "b"]}
    cache.cached(tmp_path, "x.pt", lambda allocate: value)
    path = tmp_path / "x.pt"
    path.write_bytes(path.read_bytes()[:5000])
    builds = []
    with pytest.warns(UserWarning, match=r"the cached x.pt in .* is damaged \(unreadable: .*\); decoding it again"):
        again = cache.cached(tmp_path, "x.pt", lambda allocate: builds.append(1) or value)
    assert builds == [1] and torch.equal(again["images"], value["images"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt file loads without a word
        assert cache.cached(tmp_path, "x.pt", lambda allocate: builds.append(2) or value)["classes"] == ["a", "b"]
    assert builds == [1]


def test_a_well_formed_file_whose_content_changed_fails_its_check(tmp_path):
    value = {"images": torch.arange(60, dtype=torch.uint8).reshape(3, 20), "classes": ["a", "b", "c"]}
    cache.cached(tmp_path, "x.pt", lambda allocate: value)
    path = tmp_path / "x.pt"
    saved = torch.load(path, weights_only=True)
    assert saved["crc32"] == cache.checksum(value)
    saved["value"]["classes"][2] = "d"
    torch.save(saved, path)
    with pytest.raises(cache.Damaged, match="checksum"):
        cache._load(path)


def test_a_cache_file_of_the_first_format_is_still_read(tmp_path):
    images = torch.arange(60, dtype=torch.uint8).reshape(3, 20)
    torch.save(images, tmp_path / "old.pt")  # as written before files carried a checksum
    assert torch.equal(cache.cached_tensor(tmp_path, "old.pt", lambda: pytest.fail("decoded again")), images)
