"""Where items come from: words files, built-in corpora, labelled and CSV input, the vocabulary,
the encoded corpus and its splits, and the batches each kind of model reads."""
