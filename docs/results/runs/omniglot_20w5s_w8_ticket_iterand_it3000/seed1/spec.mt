// Operative spec of `omniglot_mlp_ticket_iterand`: imports, inheritance, overrides and defaults applied.

model mlp(hidden: list[int], width: int = 1, classes: int) {
  flatten
  for i, h in hidden {
    layer{i + 1}: linear(h * width) -> bn: batchnorm(eps: 1e-3) -> relu
  }
  head: linear(classes)
}

experiment omniglot_mlp_ticket_iterand {
  seeds: [1]
  device {
    type: auto
    amp: off
    channels_last: auto
  }
  data {
    root: "/work/shared/data"
    train: omniglot(split: train, size: 28, rotations: [0, 90, 180, 270], channels: 1, download: true, root: none)
    valid: omniglot(split: val, size: 28, rotations: [0, 90, 180, 270], channels: 1, download: true, root: none)
    test: [omniglot(split: test, size: 28, rotations: [0, 90, 180, 270], channels: 1, download: true, root: none)]
  }
  task {
    ways: 20
    shots: 5
    queries: 5
  }
  model: mlp(hidden: [256, 128, 64, 64], width: 8, classes: 20)
  params {
    "**.weight": masked
    "head.**": fixed
    "**.bias": fixed
    "**.bn.**": fixed
  }
  init: {}
  mask {
    weights: kaiming_normal
    scores: kaiming_uniform
    threshold: fixed_at_init(sparsity: 0.0)
    iterand {
      every: 1000
      prob: 1.0
    }
  }
  inner {
    steps: 1
    test_steps: 3
    lr {
      "**": 0.4
    }
    order: second
  }
  outer {
    optimizer: sgd(lr: 10.0, momentum: 0.9, nesterov: false, weight_decay: 0.0)
    schedule: cosine(warmup: 1000)
    iterations: 3000
    meta_batch: 4
    tasks_in: auto
  }
  eval {
    every: 1000
    valid_tasks: 100
    test_tasks: 1000
    checkpoint: last
  }
}
