import "../../../specs/omniglot_mlp_ticket.mt"

sweep shots over omniglot_mlp_ticket {
  task.shotz: [1, 5]
}
// expect: 4:3: unknown field `shotz` in `task`
