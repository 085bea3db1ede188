"""N-way K-shot sampling: the invariants every task must satisfy, on real tensors."""

import pytest
import torch

from mtdsl.data.tasks import ClassificationTasks
from mtdsl.errors import DataError


def tagged_images(classes: int, per_class: int, side: int = 3) -> torch.Tensor:
    """uint8 [classes, per_class, 1, side, side] whose pixel (0,0) holds the class and (0,1)
    the image index, so a sampled image says where it came from."""
    images = torch.zeros(classes, per_class, 1, side, side, dtype=torch.uint8)
    images[:, :, 0, 0, 0] = torch.arange(classes).view(-1, 1)
    images[:, :, 0, 0, 1] = torch.arange(per_class).view(1, -1)
    images[:, :, 0, 1:, :] = 255  # keeps values spanning [0, 1]
    return images


def origins(x: torch.Tensor) -> torch.Tensor:
    """(class, image index) of every item in x float [T, items, 1, H, W]."""
    return (x[:, :, 0, 0, :2] * 255).round().long()


def test_every_task_has_the_n_way_k_shot_structure():
    ways, shots, queries, tasks = 5, 3, 4, 50
    batch = ClassificationTasks(tagged_images(12, 10), ways, shots, queries).sample(
        tasks, torch.Generator().manual_seed(0))
    support, query = origins(batch.support_x), origins(batch.query_x)
    for t in range(tasks):
        assert sorted(batch.support_y[t].tolist()) == sorted(list(range(ways)) * shots)
        assert sorted(batch.query_y[t].tolist()) == sorted(list(range(ways)) * queries)
        class_of_label = {}
        for items, labels in ((support[t], batch.support_y[t]), (query[t], batch.query_y[t])):
            for (cls, _), label in zip(items.tolist(), labels.tolist()):
                assert class_of_label.setdefault(label, cls) == cls  # one class per label
        assert len(set(class_of_label.values())) == ways  # N distinct classes
        drawn = [tuple(o) for o in torch.cat([support[t], query[t]]).tolist()]
        assert len(set(drawn)) == ways * (shots + queries)  # support/query disjoint, no repeats


def test_shapes_dtypes_and_range():
    source = ClassificationTasks(tagged_images(8, 6, side=5), ways=4, shots=2, queries=3)
    batch = source.sample(7, torch.Generator().manual_seed(1))
    assert batch.support_x.shape == (7, 8, 1, 5, 5) and batch.query_x.shape == (7, 12, 1, 5, 5)
    assert batch.support_y.shape == (7, 8) and batch.query_y.shape == (7, 12)
    assert batch.support_x.dtype == torch.float32 and batch.support_y.dtype == torch.int64
    assert batch.support_x.min() == 0.0 and batch.support_x.max() == 1.0
    assert source.input_shape == (1, 5, 5)
    assert source.kind == "classification" and source.num_classes == 8


def test_same_generator_state_gives_same_tasks_and_another_seed_does_not():
    source = ClassificationTasks(tagged_images(20, 8), ways=5, shots=2, queries=2)
    a = source.sample(6, torch.Generator().manual_seed(3))
    b = source.sample(6, torch.Generator().manual_seed(3))
    c = source.sample(6, torch.Generator().manual_seed(4))
    for name in ("support_x", "support_y", "query_x", "query_y"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.support_x, c.support_x)


def test_labels_are_a_random_permutation_of_the_drawn_classes():
    ways, tasks = 5, 2000
    batch = ClassificationTasks(tagged_images(10, 4), ways, 1, 1).sample(
        tasks, torch.Generator().manual_seed(5))
    classes = origins(batch.support_x)[:, :, 0]  # support is grouped by label, one shot each
    assert torch.equal(batch.support_y, torch.arange(ways).expand(tasks, ways))
    label0_is_smallest = (classes[:, 0] == classes.min(dim=1).values).float().mean().item()
    assert abs(label0_is_smallest - 1 / ways) < 0.05
    assert classes.unique().numel() == 10  # every class gets drawn


def test_sampling_happens_on_the_images_device():
    # The meta device has no data but runs the index math, so this checks placement without a GPU.
    source = ClassificationTasks(tagged_images(6, 4), 3, 1, 1).to("meta")
    batch = source.sample(2, torch.Generator().manual_seed(0))
    parts = (batch.support_x, batch.support_y, batch.query_x, batch.query_y)
    assert {t.device.type for t in parts} == {"meta"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tasks_equal_cpu_tasks_from_the_same_cpu_generator():
    source = ClassificationTasks(tagged_images(30, 10), 5, 2, 3)
    on_cpu = source.sample(4, torch.Generator().manual_seed(9))
    on_gpu = source.to("cuda").sample(4, torch.Generator().manual_seed(9))
    assert on_gpu.support_x.is_cuda
    assert torch.equal(on_gpu.support_x.cpu(), on_cpu.support_x)
    assert torch.equal(on_gpu.query_y.cpu(), on_cpu.query_y)


def test_too_many_ways_is_a_data_error_naming_the_counts():
    with pytest.raises(DataError, match="6-way tasks need 6 classes but omniglot val has 5"):
        ClassificationTasks(tagged_images(5, 4), 6, 1, 1, name="omniglot val")


def test_too_many_images_per_class_is_a_data_error():
    with pytest.raises(DataError, match="shots \\+ queries = 5 .* only 4 images per class"):
        ClassificationTasks(tagged_images(5, 4), 2, 2, 3)


def test_zero_shots_is_a_data_error():
    with pytest.raises(DataError, match="at least 1"):
        ClassificationTasks(tagged_images(5, 4), 2, 0, 1)


# ---- classes of different sizes --------------------------------------------------------------

def ragged_images(counts: list[int], side: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [total, 1, side, side] tagged like tagged_images, and offsets for `counts`."""
    total = sum(counts)
    images = torch.zeros(total, 1, side, side, dtype=torch.uint8)
    offsets = torch.tensor([0] + counts).cumsum(0)
    for c, n in enumerate(counts):
        images[offsets[c]:offsets[c + 1], 0, 0, 0] = c
        images[offsets[c]:offsets[c + 1], 0, 0, 1] = torch.arange(n, dtype=torch.uint8)
    images[:, 0, 1:, :] = 255
    return images, offsets


def test_ragged_classes_give_valid_tasks_from_within_each_class():
    counts = [3, 9, 4, 12, 5, 3, 7]
    images, offsets = ragged_images(counts)
    ways, shots, queries = 4, 1, 2
    batch = ClassificationTasks(images, ways, shots, queries, offsets=offsets).sample(
        300, torch.Generator().manual_seed(0))
    for t in range(300):
        items = torch.cat([origins(batch.support_x)[t], origins(batch.query_x)[t]]).tolist()
        labels = torch.cat([batch.support_y[t], batch.query_y[t]]).tolist()
        assert all(index < counts[cls] for cls, index in items)  # never past a class's end
        assert len(set(map(tuple, items))) == len(items)  # no image twice
        class_of_label = {}
        for (cls, _), label in zip(items, labels):
            assert class_of_label.setdefault(label, cls) == cls
        assert len(set(class_of_label.values())) == ways


def test_ragged_images_are_drawn_uniformly_within_their_class():
    counts = [3, 12]
    images, offsets = ragged_images(counts)
    batch = ClassificationTasks(images, 2, 1, 2, offsets=offsets).sample(
        6000, torch.Generator().manual_seed(1))
    drawn = torch.cat([origins(batch.support_x), origins(batch.query_x)], dim=1).reshape(-1, 2)
    for cls, n in enumerate(counts):
        hits = torch.bincount(drawn[drawn[:, 0] == cls, 1], minlength=n).float()
        assert hits.numel() == n and (hits > 0).all()
        # Every image of a class is drawn 3/n of the time it is chosen, i.e. 6000 * 3 / n.
        assert torch.allclose(hits / 6000, torch.full((n,), 3 / n), atol=0.03)


def test_equal_classes_draw_the_same_tasks_dense_or_flat():
    dense = tagged_images(9, 6)
    flat = dense.flatten(0, 1)
    offsets = torch.arange(10) * 6
    a = ClassificationTasks(dense, 3, 2, 2).sample(5, torch.Generator().manual_seed(4))
    b = ClassificationTasks(flat, 3, 2, 2, offsets=offsets).sample(5, torch.Generator().manual_seed(4))
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_x, b.query_x)


def test_a_class_too_small_for_the_task_is_named():
    images, offsets = ragged_images([5, 2, 6])
    with pytest.raises(DataError, match=r"shots \+ queries = 3 .* a class \(b\) with only 2 images"):
        ClassificationTasks(images, 2, 1, 2, offsets=offsets, classes=["a", "b", "c"])


def test_ragged_sampling_happens_on_the_images_device():
    images, offsets = ragged_images([3, 5, 4])
    source = ClassificationTasks(images, 2, 1, 1, offsets=offsets).to("meta")
    batch = source.sample(2, torch.Generator().manual_seed(0))
    assert batch.support_x.device.type == "meta" and batch.query_y.device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_ragged_tasks_equal_cpu_tasks_with_either_generator():
    counts = [3, 9, 4, 12, 5]
    images, offsets = ragged_images(counts)
    source = ClassificationTasks(images, 3, 1, 2, offsets=offsets)
    on_cpu = source.sample(6, torch.Generator().manual_seed(9))
    on_gpu = source.to("cuda").sample(6, torch.Generator().manual_seed(9))
    assert on_gpu.support_x.is_cuda and torch.equal(on_gpu.query_x.cpu(), on_cpu.query_x)
    drawn_on_gpu = source.to("cuda").sample(6, torch.Generator("cuda").manual_seed(9))
    for cls, index in origins(drawn_on_gpu.query_x.cpu()).reshape(-1, 2).tolist():
        assert index < counts[cls]
