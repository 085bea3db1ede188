// nothing here but a comment
// expect: 1:1: `tests/specs/bad/empty_file.mt` defines no experiment, sweep or model
