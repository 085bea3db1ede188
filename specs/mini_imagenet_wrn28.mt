// WRN-28-10 on miniImageNet 5-way 1-shot and 5-shot, 84x84 (paper Tables 2 and 9), meta-tested
// on miniImageNet, CUB and Cars. Hyperparameters from the public Meta-ticket configs
// (inner lr 0.3 and MAML's AdamW 0.0006 from BOIL).
import "lib/models.mt"

experiment mini_imagenet_wrn28_maml {
  seeds: [1, 2, 3]

  data {
    root: env("MTDSL_DATA", default: "~/.cache/mtdsl")
    train: mini_imagenet(split: "train", size: 84)
    valid: mini_imagenet(split: "val", size: 84)
    test: [mini_imagenet(split: "test", size: 84), cub(split: "test", size: 84), cars(split: "test", size: 84)]
  }

  task { ways: 5, shots: 5 }

  model: wrn28(k: 10, classes: task.ways)

  params { "**": meta }

  inner { steps: 1, lr: 0.3 }

  outer { optimizer: adamw(lr: 0.0006), iterations: 30000, meta_batch: 4 }

  eval { every: 1000, valid_tasks: 200, test_tasks: 1000 }
}

experiment mini_imagenet_wrn28_anil extends mini_imagenet_wrn28_maml {
  inner { lr: 0, lr["head.**"]: 0.3 }
}

experiment mini_imagenet_wrn28_boil extends mini_imagenet_wrn28_maml {
  inner { lr["head.**"]: 0 }
}

// Every conv kernel masked (shortcut projections too); batchnorm and the head fixed.
experiment mini_imagenet_wrn28_ticket extends mini_imagenet_wrn28_maml {
  params: { "**.weight": masked, "**.bn.**": fixed, "head.**": fixed }
  outer { optimizer: sgd(lr: 10, momentum: 0.9), schedule: cosine(warmup: 1000) }
}

experiment mini_imagenet_wrn28_ticket_boil extends mini_imagenet_wrn28_ticket {
  inner { lr["head.**"]: 0 }
}

// 1-shot and 5-shot, three seeds, for every method.
sweep mini_imagenet_wrn28_maml_shots over mini_imagenet_wrn28_maml {
  task.shots: [1, 5]
  seeds: [1, 2, 3]
}

sweep mini_imagenet_wrn28_anil_shots over mini_imagenet_wrn28_anil {
  task.shots: [1, 5]
  seeds: [1, 2, 3]
}

sweep mini_imagenet_wrn28_boil_shots over mini_imagenet_wrn28_boil {
  task.shots: [1, 5]
  seeds: [1, 2, 3]
}

sweep mini_imagenet_wrn28_ticket_shots over mini_imagenet_wrn28_ticket {
  task.shots: [1, 5]
  seeds: [1, 2, 3]
}

sweep mini_imagenet_wrn28_ticket_boil_shots over mini_imagenet_wrn28_ticket_boil {
  task.shots: [1, 5]
  seeds: [1, 2, 3]
}
