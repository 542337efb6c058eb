/* SPDX-License-Identifier: MIT */
/*
 * The event journal: one JSON line per event a process of libnp saw,
 * appended to np_event_log_path() (docs/nptool.md, nptool events).
 */
#ifndef NP_JOURNAL_H
#define NP_JOURNAL_H

struct np_card;

/* The kinds of event, as written in the "kind" field. */
#define NPI_EV_ERROR "error"
#define NPI_EV_RESET "reset"
#define NPI_EV_RECOVERY "recovery"
#define NPI_EV_THERMAL "thermal"
#define NPI_EV_FAULT "fault-injected"

/*
 * Append an event of kind about card to the journal with one O_APPEND
 * write(). Never fails the caller: if the journal cannot be written, the
 * context's log hears of it once (LOG_NOTICE) and the event is dropped.
 */
__attribute__((format(printf, 3, 4))) void
npi_journal(struct np_card *card, const char *kind, const char *fmt, ...);

#endif /* NP_JOURNAL_H */
