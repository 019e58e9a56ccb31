/* args.h: option parsing helpers shared by the shardnet commands. */
#ifndef SHARDNET_CLI_ARGS_H
#define SHARDNET_CLI_ARGS_H

/* An integer in lo..hi (a number in [lo, hi]) into *out; -1 with a message on stderr. */
int sn_cli_parse_long(const char *opt, const char *s, long lo, long hi, long *out);
int sn_cli_parse_double(const char *opt, const char *s, double lo, double hi, double *out);

/* --progress auto | lines | none -> SN_PROGRESS_*; -1 with a message on stderr. */
int sn_cli_parse_progress(const char *s);

#endif
