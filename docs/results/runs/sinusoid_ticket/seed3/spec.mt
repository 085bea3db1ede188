// Operative spec of `sinusoid_ticket`: imports, inheritance, overrides and defaults applied.

model sine_mlp(hidden: int = 40) {
  layer1: linear(hidden) -> relu
  layer2: linear(hidden) -> relu
  head: linear(1)
}

experiment sinusoid_ticket {
  seeds: [3]
  device {
    type: auto
    amp: off
    channels_last: auto
  }
  data {
    root: none
    train: sinusoid(split: train, amplitude: [0.1, 5.0], phase: [0.0, 3.141592653589793], x_range: [-5.0, 5.0])
    valid: none
    test: [sinusoid(split: test, amplitude: [0.1, 5.0], phase: [0.0, 3.141592653589793], x_range: [-5.0, 5.0])]
  }
  task {
    ways: none
    shots: 5
    queries: 5
  }
  model: sine_mlp(hidden: 40)
  params {
    "layer2.weight": masked
    "**": meta
  }
  init {
    "layer1.**": torch_default
    "head.**": torch_default
    "**.bias": torch_default
  }
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
    steps: 5
    test_steps: none
    lr {
      "**": 0.01
    }
    order: second
  }
  outer {
    optimizer: adamw(lr: 0.001, betas: [0.9, 0.999], weight_decay: 0.0)
    schedule: none
    iterations: 30000
    meta_batch: 4
    tasks_in: auto
  }
  eval {
    every: 1000
    valid_tasks: 200
    test_tasks: 1000
    checkpoint: last
  }
}
