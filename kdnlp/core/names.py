"""Column and input names that several layers share (the data a task makes, the trainer and the teacher cache read)."""

#: Prefix of the columns holding the teacher's own tokenisation, when it reads text differently from the student.
TEACHER_PREFIX = "teacher_"
