"""Missing, partial and damaged datasets: each is a DataError that says what was searched, what
was expected and what to do, and nothing damaged ever reaches the cache."""

from __future__ import annotations

import pickle

import pytest

from fixtures import layouts
from mtdsl.data.registry import DATASETS, declaration, open_dataset, options
from mtdsl.errors import DataError


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MTDSL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MTDSL_OFFLINE", "1")


def open_(name, root, split="train", **given):
    if "download" in given and "download" not in options(name):
        del given["download"]  # cars has no download to ask for
    return open_dataset(name, root=str(root), split=split, ways=2, shots=1, queries=1,
                        size=8, **given)


@pytest.mark.parametrize("name", sorted(n for n, c in DATASETS.items() if c.facts.files is not None))
def test_every_missing_dataset_says_where_its_files_go_and_how_big_they_are(tmp_path, name):
    data = tmp_path / "data"
    files = declaration(name).facts.files
    with pytest.raises(DataError) as error:
        open_(name, data, download=True, **({"path": "my_images"} if name == "folder" else {}))
    message = str(error.value)
    if name == "folder":  # the user's own images: where they are looked for and their layout
        assert str(data / "my_images") in message and "one sub-folder per class" in message
        return
    assert f"Put the files here: {files.layout.replace('<root>', str(data))}" in message
    assert f"Size: {files.size}" in message
    assert f"To get it: {files.obtain}" in message
    assert not data.exists()  # MTDSL_OFFLINE: no download was tried, no folder made


def cached_files(tmp_path):
    return list((tmp_path / "cache").glob("*.pt"))


@pytest.mark.parametrize("name, searched, expected", [
    ("vgg_flower", ["flowers-102", "vgg_flower102", "vgg_flower"], "imagelabels.mat"),
    ("aircraft", ["fgvc-aircraft-2013b", "fgvc_aircraft/fgvc-aircraft-2013b"], "images_variant_trainval.txt"),
    ("cars", ["stanford_cars", "cars"], "cars_train_annos.mat"),
    ("cub", ["cubirds200/CUB_200_2011", "cub/CUB_200_2011", "CUB_200_2011"], "images.txt"),
    ("mini_imagenet", ["mini-imagenet", "mini_imagenet/train"], "mini-imagenet-cache-{train,validation,test}.pkl"),
    ("tiered_imagenet", ["tiered-imagenet", "tiered_imagenet/train"], "{train,val,test}_images_png.pkl"),
])
def test_a_missing_dataset_names_the_folders_searched_and_the_layout(tmp_path, name, searched, expected):
    data = tmp_path / "data"
    with pytest.raises(DataError) as error:
        open_(name, data, download=True)  # MTDSL_OFFLINE wins over the flag
    message = str(error.value)
    assert message.startswith(f"{name} ") and "data not found" in message
    for folder in searched:
        assert str(data / folder) in message
    assert "Put the files here:" in message and expected in message and "To get it:" in message
    assert ("MTDSL_OFFLINE" in message) == (name != "cars")  # cars has no download to turn off
    assert not data.exists()  # nothing was created: no download was tried


def test_cars_says_it_cannot_be_downloaded(tmp_path):
    with pytest.raises(DataError, match="(?s)cars .*download it yourself.*torchvision's StanfordCars download"):
        open_("cars", tmp_path)


def test_a_photo_missing_from_a_partial_extraction_is_named(tmp_path):
    folder, _ = layouts.write_flowers(tmp_path)
    (folder / "jpg" / "image_00007.jpg").unlink()
    split = next(s for s in layouts.SPLITS  # the split that photo 7 belongs to
                 for name in layouts.packaged("vgg_flower", s)
                 if int(name[:3]) == _label_of_photo(folder, 7))
    with pytest.raises(DataError, match="vgg_flower at .* is incomplete: 1 photos .* image_00007.jpg"):
        open_("vgg_flower", tmp_path, split, verify=False)


def _label_of_photo(folder, n):
    from scipy.io import loadmat
    return int(loadmat(folder / "imagelabels.mat", squeeze_me=True)["labels"][n - 1])


def test_a_class_missing_from_the_split_is_named(tmp_path):
    folder, _ = layouts.write_aircraft(tmp_path)
    listing = folder / "data" / "images_variant_test.txt"
    listing.write_text("".join(l for l in listing.read_text().splitlines(True) if "A340-300" not in l))
    trainval = folder / "data" / "images_variant_trainval.txt"
    trainval.write_text("".join(l for l in trainval.read_text().splitlines(True) if "A340-300" not in l))
    with pytest.raises(DataError, match="aircraft at .* is incomplete: 1 of the split's 70 classes "
                                        "have no images: A340-300"):
        open_("aircraft", tmp_path)


def test_a_missing_box_file_says_how_to_do_without(tmp_path):
    folder, _ = layouts.write_aircraft(tmp_path)
    (folder / "data" / "images_box.txt").unlink()
    with pytest.raises(DataError, match="images_box.txt is missing.*`boxes: false`"):
        open_("aircraft", tmp_path)
    assert open_("aircraft", tmp_path, boxes=False).num_classes == 70


def test_a_cub_photo_listed_in_images_txt_but_missing_is_named(tmp_path):
    folder, _ = layouts.write_cub(tmp_path)
    victim = next((folder / "images" / "001.Black_footed_Albatross").iterdir())
    victim.unlink()
    with pytest.raises(DataError, match=f"cub at .* is incomplete: 1 photos that images.txt lists "
                                        f"are missing: 001.Black_footed_Albatross/{victim.name}"):
        open_("cub", tmp_path, resize=10)


def test_a_damaged_photo_stops_the_decode_and_nothing_is_cached(tmp_path):
    folder, _ = layouts.write_cub(tmp_path)
    victim = sorted((folder / "images" / "003.Sooty_Albatross").iterdir())[1]
    victim.write_bytes(victim.read_bytes()[:60])  # a truncated download
    with pytest.raises(DataError, match=f"cub: {victim} is unreadable .*nothing was cached"):
        open_("cub", tmp_path, resize=10)
    assert cached_files(tmp_path) == []


def test_a_mini_imagenet_pickle_of_the_wrong_split_is_refused(tmp_path):
    folder, _ = layouts.write_mini_imagenet(tmp_path, per_class=2)
    (folder / "mini-imagenet-cache-validation.pkl").replace(folder / "mini-imagenet-cache-train.pkl")
    with pytest.raises(DataError, match="mini_imagenet: .*mini-imagenet-cache-train.pkl holds 16 "
                                        "classes, but the train split has 64"):
        open_("mini_imagenet", tmp_path)


def test_tiered_images_and_labels_that_disagree_are_a_partial_download(tmp_path):
    folder, _ = layouts.write_tiered_imagenet(tmp_path)
    images = pickle.loads((folder / "val_images_png.pkl").read_bytes())
    (folder / "val_images_png.pkl").write_bytes(pickle.dumps(images[:-3]))
    with pytest.raises(DataError, match="tiered_imagenet: .* holds 191 images but 194 labels .*partial download"):
        open_("tiered_imagenet", tmp_path, "val")
    assert cached_files(tmp_path) == []
