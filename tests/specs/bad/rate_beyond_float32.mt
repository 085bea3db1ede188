import "../../../specs/lib/models.mt"

experiment broken {
  data {
    root  = env("MTDSL_DATA", default: "~/.cache/mtdsl")
    train = omniglot(split: "train")
    test  = omniglot(split: "test")
  }
  task { ways: 5, shots: 1, queries: 5 }
  model = mlp(hidden: [64, 64], classes: task.ways)
  params {
    "**.weight": masked
    "head.**", "**.bias", "**.bn.**": fixed
  }
  inner { steps: 1, lr: {"**": 0.4, "head.**": 1e39} }
  outer { optimizer: adamw(lr: 0.001, weight_decay: 5e38), schedule: cosine(warmup: 10), iterations: 5 }
}
// expect: 15:48: `inner.lr.head.**`: 1e+39 is beyond what a float32 tensor can hold (at most 3.4e38)
// expect: 16:53: `outer.optimizer.weight_decay`: 5e+38 is beyond what a float32 tensor can hold (at most 3.4e38)
