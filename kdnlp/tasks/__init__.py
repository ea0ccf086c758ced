"""Kinds of task behind one interface (kdnlp.tasks.base.Problem): GLUE, seq2seq and multi-task, each a package;
`kinds.get_problem` turns a task name and its options into one."""
