/* Transport addresses: one type (struct sockaddr_storage holding AF_INET or
 * AF_INET6) everywhere, canonical form = IPv4-mapped IPv6 turned into IPv4. */
#ifndef XT_ADDR_H
#define XT_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

/* "[v6]:port" or "v4:port" plus NUL. */
#define ADDR_STRLEN (INET6_ADDRSTRLEN + 8)

/* Turns ::ffff:a.b.c.d into AF_INET a.b.c.d (port kept); others unchanged. */
void addr_canon(struct sockaddr_storage *a);
/* Same family, address and port (canonicalizes copies first). */
bool addr_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/* Same family and address, ports ignored. */
bool addr_ip_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
uint16_t addr_port(const struct sockaddr_storage *a);	/* host order */
void addr_set_port(struct sockaddr_storage *a, uint16_t port);
socklen_t addr_len(const struct sockaddr_storage *a);
/* Hash of address and port (with_port) or the address alone. */
uint64_t addr_hash(const struct sockaddr_storage *a, bool with_port);
/* Parses an IP ("1.2.3.4", "::1") with an optional port ("1.2.3.4:5",
 * "[::1]:5"); 0 or -EINVAL. */
int addr_parse(const char *s, uint16_t default_port, struct sockaddr_storage *out);
/* Formats "1.2.3.4:5" / "[::1]:5" (with_port) or the bare IP. */
const char *addr_str(const struct sockaddr_storage *a, bool with_port, char *buf, size_t len);
/* The 16-byte form the XDP maps use: IPv4 as ::ffff:a.b.c.d. */
void addr_to_mapped(const struct sockaddr_storage *a, uint32_t out[4]);
/* The key one source counts under in per-source limits: the IPv4-mapped
 * address, an IPv6 address's /64 (a host usually has a whole /64). */
void addr_source_key(const struct sockaddr_storage *a, uint32_t out[4]);
/* The unspecified address of a family (for binding to all). */
bool addr_is_any(const struct sockaddr_storage *a);

#endif
