// Meta-ticket on ResNet-12 (8.0 M parameters), miniImageNet 5-way 5-shot at 84x84, three
// seeds, meta-tested on miniImageNet, CUB and Cars: the paper's Table 2 setting (its 1-shot
// column is `--set task.shots=1`). The MAML, ANIL and BOIL rows, the 1-shot/5-shot sweeps
// and every hyperparameter are in mini_imagenet_resnet12.mt.
//
//   mtdsl run specs/resnet12_miniimagenet.mt --estimate   # what it will cost on this machine
//   mtdsl run specs/resnet12_miniimagenet.mt
import "mini_imagenet_resnet12.mt"

experiment resnet12_miniimagenet extends mini_imagenet_resnet12_ticket {
}
