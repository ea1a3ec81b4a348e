/* Files written a line at a time by several threads and moved away by
 * logrotate: the log (log-file) and the accounting log. */
#ifndef XT_APPENDFILE_H
#define XT_APPENDFILE_H

/* Opens path for appending (created 0640): the fd, or -errno. O_APPEND
 * keeps each write(2) of a line whole between threads. */
int appendfile_open(const char *path);
/* Opens path anew onto fd (after logrotate moved the old file): dup2 swaps
 * the file under fd in one step, so a thread's line goes to the old file or
 * the new one, never to a closed descriptor. 0, or -errno with the old file
 * kept. */
int appendfile_reopen(int fd, const char *path);

#endif
