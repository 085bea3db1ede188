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
  inner { steps: "one", lr: 0.4, order: secnd }
  outer { optimizer: sgd(lr: 10, momentum: 0.9), schedule: cosine(warmup: 10), itertions: 100 }
}
// expect: 15:18: `inner.steps` must be an integer, got a string ("one")
// expect: 15:41: `inner.order` must be one of `first`, `second`, got `secnd`
// expect: 16:80: unknown field `itertions` in `outer`
