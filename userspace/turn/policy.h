/* Peer address policy: may a client relay to this peer? Addresses are
 * canonicalized first (IPv4-mapped IPv6 -> IPv4), so ::ffff:127.0.0.1 is
 * loopback. Order: allowed-peer-ip wins, then denied-peer-ip, then the
 * built-in deny of special-purpose ranges (loopback, unspecified, private,
 * link-local, multicast, CGNAT, documentation, ...), then allow. */
#ifndef XT_POLICY_H
#define XT_POLICY_H

#include <stdbool.h>
#include <sys/socket.h>

struct policy;

struct policy *policy_new(void);
void policy_free(struct policy *p);
/* Adds a rule: an IP, a CIDR ("10.0.0.0/8", "fc00::/7") or coturn's range
 * form ("10.0.0.1-10.0.0.9"), optionally with a port or port range
 * ("10.0.0.5:5000-5999", "[fd00::5]:443"; IPv6 in brackets then).
 * 0 or -EINVAL (bad syntax), -ENOMEM. */
int policy_allow(struct policy *p, const char *spec);
int policy_deny(struct policy *p, const char *spec);
/* Checks a rule's syntax without adding it (config validation): 0 or -EINVAL. */
int policy_spec_check(const char *spec);
/* Turns the built-in special-range deny off (coturn-like permissive mode). */
void policy_set_default_deny(struct policy *p, bool on);
/* May some port of the peer's IP be reached (a permission)? */
bool policy_peer_allowed(const struct policy *p, const struct sockaddr_storage *peer);
/* May the peer's IP and port be reached (a channel, a Send)? */
bool policy_transport_allowed(const struct policy *p, const struct sockaddr_storage *peer);
/* Is there an allowed-peer-ip rule for exactly this one IP (and, unless
 * any_port, a range with the peer's port)? Only such a rule opens one of
 * this host's own addresses (hostaddr.h). */
bool policy_exact_allowed(const struct policy *p, const struct sockaddr_storage *peer,
			  bool any_port);
/* Does a rule name ports (so a permission, which is for an IP, does not
 * answer for every port)? */
bool policy_has_ports(const struct policy *p);
/* Is the address in a built-in special-purpose range (after canonicalizing)? */
bool policy_is_special(const struct sockaddr_storage *peer);

#endif
