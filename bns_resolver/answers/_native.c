/* The UDP reader's store answer in C: parse a plain query, look it up, join the reply.
 *
 * This is respond.StoreAnswerer.answer for the cases it settles alone, byte for byte:
 * a name with an entry (its NODE answer, or the web gateway's address), and a name the
 * store has none for in a bns-only namespace (NXDOMAIN with the namespace SOA). Every
 * other case returns None and the Python path decides, so the C code holds no policy of
 * its own: what a namespace allows comes from a "plan" the Python side computes
 * (NativeAnswerer.plan, cached per namespace and dropped whenever the index, its
 * readiness or the namespace policy changes).
 *
 * The store format is answers/format.py's; the reply layout is respond._join's.
 */
#define _GNU_SOURCE /* recvmmsg, sendmmsg */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#ifdef __linux__
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#define HAVE_READER 1
#endif

#define TYPE_A 1
#define TYPE_AAAA 28
#define TYPE_OPT 41
#define TYPE_IXFR 251
#define TYPE_AXFR 252
#define CLASS_IN 1
#define MIN_UDP_PAYLOAD 512
#define MAX_UDP_PAYLOAD 4096
#define MAX_NAME_LENGTH 255
#define HEADER_LEN 12
#define RCODE_NXDOMAIN 3

#define KIND_MASK 0x0F
#define KIND_NODE 0
#define FLAG_APEX 0x10
#define FLAG_WEB 0x20
#define ENTRY_LEN 9 /* qtype (2), rcode (1), ancount (2), length (4) */

/* Plans (NativeAnswerer.plan): what a namespace lets the C path answer. */
#define PLAN_BNS_FIRST 1 /* answer names the store has; a missing name goes upstream (decline) */
#define PLAN_BNS_ONLY 2  /* answer names the store has, NXDOMAIN for the rest */

static const unsigned char CANARY[] = "\x13use-application-dns\x03net";  /* + its final zero */

typedef struct {
    const unsigned char *packet;
    unsigned char qname[MAX_NAME_LENGTH + 1]; /* lower-cased, with its final zero */
    Py_ssize_t qname_length;
    int offsets[MAX_NAME_LENGTH / 2 + 1];
    int labels;
    unsigned qtype;
    Py_ssize_t question_end;
    int edns;
    unsigned payload;
    int do_bit;
} Query;

/* dns.wire.parse_fast's shape test, and the answerer's own first refusals. */
static int parse_query(const unsigned char *p, Py_ssize_t n, Query *q)
{
    if (n < 17)
        return 0;
    unsigned flags = (p[2] << 8) | p[3];
    unsigned qdcount = (p[4] << 8) | p[5], ancount = (p[6] << 8) | p[7];
    unsigned nscount = (p[8] << 8) | p[9], arcount = (p[10] << 8) | p[11];
    if ((flags & 0xF800) || qdcount != 1 || ancount || nscount || arcount > 1)
        return 0;
    Py_ssize_t offset = HEADER_LEN;
    int labels = 0;
    for (;;) {
        if (offset >= n)
            return 0;
        unsigned length = p[offset];
        if (length == 0)
            break;
        if (length > 63)
            return 0;
        if (offset + 1 + (Py_ssize_t)length - HEADER_LEN >= MAX_NAME_LENGTH)
            return 0; /* over 255 bytes with its zero: the slow path's FORMERR */
        q->offsets[labels++] = (int)(offset - HEADER_LEN);
        offset += length + 1;
    }
    Py_ssize_t end = offset + 1;
    if (end + 4 > n)
        return 0;
    q->qname_length = end - HEADER_LEN;
    for (Py_ssize_t i = 0; i < q->qname_length; i++) {
        unsigned char c = p[HEADER_LEN + i];
        q->qname[i] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
    }
    q->labels = labels;
    q->qtype = (p[end] << 8) | p[end + 1];
    unsigned qclass = (p[end + 2] << 8) | p[end + 3];
    q->question_end = end + 4;
    q->edns = 0;
    q->do_bit = 0;
    q->payload = MIN_UDP_PAYLOAD;
    if (arcount) {
        /* A bare OPT: root owner, version 0, no options. */
        const unsigned char *opt = p + q->question_end;
        if (n != q->question_end + 11 || opt[0] != 0)
            return 0;
        unsigned rtype = (opt[1] << 8) | opt[2], payload = (opt[3] << 8) | opt[4];
        unsigned version = opt[6], ttl_low = (opt[7] << 8) | opt[8], rdlength = (opt[9] << 8) | opt[10];
        if (rtype != TYPE_OPT || version != 0 || rdlength != 0)
            return 0;
        q->edns = 1;
        q->payload = payload < MIN_UDP_PAYLOAD ? MIN_UDP_PAYLOAD : payload > MAX_UDP_PAYLOAD ? MAX_UDP_PAYLOAD : payload;
        q->do_bit = (ttl_low & 0x8000) != 0;
    } else if (q->question_end != n) {
        return 0;
    }
    if (qclass != CLASS_IN || q->qtype == TYPE_AXFR || q->qtype == TYPE_IXFR)
        return 0;
    q->packet = p;
    return 1;
}

static int plain_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '*';
}

/* format.is_plain: every label byte is one dnslib and dnspython read alike. */
static int is_plain(const Query *q)
{
    for (int i = 0; i < q->labels; i++) {
        int at = q->offsets[i];
        for (int j = 1; j <= q->qname[at]; j++)
            if (!plain_byte(q->qname[at + j]))
                return 0;
    }
    return 1;
}

typedef struct {
    Py_ssize_t length;
    const unsigned char *bytes;
    PyObject *owner; /* what holds `bytes` (a store value), or NULL */
    Py_buffer view;
} Value;

static void value_release(Value *value)
{
    if (value->owner != NULL) {
        PyBuffer_Release(&value->view);
        Py_DECREF(value->owner);
        value->owner = NULL;
    }
}

#define STORE_EMPTY (-2) /* a value of no bytes: corrupt; Python fails on it, so C declines */

/* get(qname[start:]) into `value`; 1 found, 0 not found, STORE_EMPTY, -1 error. */
static int store_get(PyObject *get, const Query *q, int start, Value *value)
{
    value->owner = NULL;
    PyObject *key = PyBytes_FromStringAndSize((const char *)q->qname + start, q->qname_length - start);
    if (key == NULL)
        return -1;
    PyObject *found = PyObject_CallOneArg(get, key);
    Py_DECREF(key);
    if (found == NULL)
        return -1;
    if (found == Py_None) {
        Py_DECREF(found);
        return 0;
    }
    if (PyObject_GetBuffer(found, &value->view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(found);
        return -1;
    }
    value->owner = found;
    value->bytes = value->view.buf;
    value->length = value->view.len;
    if (value->length < 1) {
        value_release(value);
        return STORE_EMPTY;
    }
    return 1;
}

typedef struct {
    int rcode;
    unsigned ancount;
    const unsigned char *section;
    Py_ssize_t section_length;
} Entry;

/* format.find_entry: the qtype's own entry, else the default (the first); 0 when malformed. */
static int find_entry(const Value *value, unsigned qtype, Entry *entry)
{
    const unsigned char *v = value->bytes;
    Py_ssize_t end = value->length, offset = 1;
    int first = 1;
    while (offset + ENTRY_LEN <= end) {
        unsigned entry_type = (v[offset] << 8) | v[offset + 1];
        uint32_t length = ((uint32_t)v[offset + 5] << 24) | ((uint32_t)v[offset + 6] << 16)
                          | ((uint32_t)v[offset + 7] << 8) | v[offset + 8];
        if ((uint64_t)length > (uint64_t)(end - offset - ENTRY_LEN))
            return 0;
        if (first || entry_type == qtype) {
            entry->rcode = v[offset + 2];
            entry->ancount = (v[offset + 3] << 8) | v[offset + 4];
            entry->section = v + offset + ENTRY_LEN;
            entry->section_length = (Py_ssize_t)length;
            if (!first)
                return 1;
        }
        first = 0;
        offset += ENTRY_LEN + (Py_ssize_t)length;
    }
    return !first && offset == end;
}

/* respond._join and _reply: header, the question as asked, records, SOA when empty, OPT; TC if too big. */
static PyObject *join_reply(const Query *q, int rcode, unsigned ancount, const unsigned char *section,
                            Py_ssize_t section_length, PyObject *soa_tail)
{
    const unsigned char *p = q->packet;
    Py_ssize_t question_length = q->question_end - HEADER_LEN;
    Py_ssize_t soa_length = 0;
    unsigned nscount = 0;
    if (ancount == 0) {
        soa_length = 2 + PyBytes_GET_SIZE(soa_tail);
        nscount = 1;
    }
    Py_ssize_t opt_length = q->edns ? 11 : 0;
    Py_ssize_t full = HEADER_LEN + question_length + section_length + soa_length + opt_length;
    int truncated = !(full <= MIN_UDP_PAYLOAD || full <= (Py_ssize_t)q->payload);
    Py_ssize_t size = truncated ? HEADER_LEN + question_length + opt_length : full;
    PyObject *reply = PyBytes_FromStringAndSize(NULL, size);
    if (reply == NULL)
        return NULL;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(reply);
    out[0] = p[0];
    out[1] = p[1];
    out[2] = (unsigned char)(0x84 | (p[2] & 0x01) | (truncated ? 0x02 : 0));
    out[3] = (unsigned char)(0x80 | (p[3] & 0x10) | rcode);
    unsigned counts[4] = {1, truncated ? 0 : ancount, truncated ? 0 : nscount, q->edns ? 1 : 0};
    for (int i = 0; i < 4; i++) {
        out[4 + 2 * i] = (unsigned char)(counts[i] >> 8);
        out[5 + 2 * i] = (unsigned char)(counts[i] & 0xFF);
    }
    unsigned char *at = out + HEADER_LEN;
    memcpy(at, p + HEADER_LEN, question_length);
    at += question_length;
    if (!truncated) {
        if (section_length) /* an empty section may come as NULL: memcpy wants a pointer even for 0 bytes */
            memcpy(at, section, section_length);
        at += section_length;
        if (soa_length) {
            /* The SOA's owner is the namespace: a pointer to the question's last label. */
            unsigned pointer = 0xC000 | (HEADER_LEN + q->offsets[q->labels - 1]);
            at[0] = (unsigned char)(pointer >> 8);
            at[1] = (unsigned char)(pointer & 0xFF);
            memcpy(at + 2, PyBytes_AS_STRING(soa_tail), PyBytes_GET_SIZE(soa_tail));
            at += soa_length;
        }
    }
    if (q->edns) {
        static const unsigned char opt[11] = {0, 0, TYPE_OPT, MAX_UDP_PAYLOAD >> 8, MAX_UDP_PAYLOAD & 0xFF, 0, 0, 0, 0, 0, 0};
        memcpy(at, opt, 11);
        if (q->do_bit)
            at[7] = 0x80;
    }
    return reply;
}

typedef struct {
    PyObject_HEAD
    PyObject *owner;     /* the StoreAnswerer: its `_get` is the store's lookup, or None */
    PyObject *plans;     /* dict: namespace label (bytes) -> (plan, SOA record after its owner) or None */
    PyObject *plan_for;  /* callable(label) -> what `plans` holds for it (and it stores there) */
    PyObject *forwarded; /* the ForwardCache: names of its `namespaces` are declined */
    PyObject *web;       /* None, or (TYPE_A or TYPE_AAAA, the finished answer record) */
    PyObject *replay;    /* the ReplayCache: its `entries` dict learns every reply (for ever: FOREVER) */
    PyObject *entries;
    Py_ssize_t max_entries;
    unsigned long long answered;
    void *buffers; /* the reader's datagram buffers, made on its first read */
} NativeAnswerer;

static PyObject *str_get;
static PyObject *str_namespaces;
static PyObject *str_make_room;
static PyObject *forever; /* float('inf'): replay.FOREVER */

/* ReplayCache.remember(packet, reply, FOREVER), its room made by the cache's own method; a reply
 * remembered is a reply joined, counted in `answered`. */
static int remember(NativeAnswerer *self, PyObject *key, PyObject *reply)
{
    if (PyDict_GET_SIZE(self->entries) >= self->max_entries) {
        PyObject *done = PyObject_CallMethodNoArgs(self->replay, str_make_room);
        if (done == NULL)
            return -1;
        Py_DECREF(done);
    }
    PyObject *answer = PyBytes_FromStringAndSize(PyBytes_AS_STRING(reply) + 2, PyBytes_GET_SIZE(reply) - 2);
    PyObject *entry = answer ? PyTuple_Pack(2, answer, forever) : NULL;
    int result = entry ? PyDict_SetItem(self->entries, key, entry) : -1;
    Py_XDECREF(entry);
    Py_XDECREF(answer);
    if (result == 0)
        self->answered++;
    return result;
}

/* respond._web: the web gateway's address for an A/AAAA question, NODATA for the other family. */
static PyObject *web_reply(NativeAnswerer *self, const Query *q, PyObject *soa_tail)
{
    /* Only called with self->web set: init checked its shape. */
    long family = PyLong_AsLong(PyTuple_GET_ITEM(self->web, 0));
    PyObject *record = PyTuple_GET_ITEM(self->web, 1);
    if ((long)q->qtype != family)
        return join_reply(q, 0, 0, NULL, 0, soa_tail);
    return join_reply(q, 0, 1, (const unsigned char *)PyBytes_AS_STRING(record), PyBytes_GET_SIZE(record), soa_tail);
}

/* The plan of the query's namespace: 1 with plan/soa_tail set, 0 to decline, -1 on error. */
static int namespace_plan(NativeAnswerer *self, const Query *q, int *plan, PyObject **soa_tail)
{
    int last = q->offsets[q->labels - 1];
    PyObject *label = PyBytes_FromStringAndSize((const char *)q->qname + last + 1, q->qname[last]);
    if (label == NULL)
        return -1;
    PyObject *found = PyDict_GetItemWithError(self->plans, label); /* borrowed */
    if (found != NULL) {
        Py_INCREF(found);
    } else if (PyErr_Occurred()) {
        Py_DECREF(label);
        return -1;
    } else {
        found = PyObject_CallOneArg(self->plan_for, label);
        if (found == NULL) {
            Py_DECREF(label);
            return -1;
        }
    }
    int result = 0;
    if (found != Py_None) {
        if (!PyTuple_Check(found) || PyTuple_GET_SIZE(found) != 2 || !PyLong_Check(PyTuple_GET_ITEM(found, 0))
            || !PyBytes_Check(PyTuple_GET_ITEM(found, 1))) {
            PyErr_SetString(PyExc_TypeError, "a namespace plan is (int, bytes) or None");
            result = -1;
        } else {
            /* Upstream answers cached for the namespace come first (Gateway.store_answer_udp's `shadowed`). */
            PyObject *shadowed = PyObject_GetAttr(self->forwarded, str_namespaces);
            PyObject *text = shadowed ? PyUnicode_DecodeLatin1((const char *)q->qname + last + 1, q->qname[last], NULL) : NULL;
            int contains = text ? PySequence_Contains(shadowed, text) : -1;
            Py_XDECREF(text);
            Py_XDECREF(shadowed);
            if (contains < 0) {
                result = -1;
            } else if (!contains) {
                *plan = (int)PyLong_AsLong(PyTuple_GET_ITEM(found, 0));
                *soa_tail = PyTuple_GET_ITEM(found, 1);
                Py_INCREF(*soa_tail);
                result = 1;
            }
        }
    }
    Py_DECREF(found);
    Py_DECREF(label);
    return result;
}

static int apex_binding(PyObject *get, const Query *q, Value *value, int *apex_at)
{
    /* respond._binding: a subdomain owns its whole subtree, then the on-chain name. */
    for (int back = 3; back >= 2; back--) {
        if (q->labels < back + 1)
            continue;
        int start = q->offsets[q->labels - back];
        int found = store_get(get, q, start, value);
        if (found < 0)
            return found;
        if (found && (value->bytes[0] & FLAG_APEX)) {
            *apex_at = start;
            return 1;
        }
        value_release(value);
    }
    return 0;
}

static PyObject *answer_missing(NativeAnswerer *self, PyObject *get, const Query *q, int plan, PyObject *soa_tail)
{
    if (!is_plain(q))
        Py_RETURN_NONE;
    Value value;
    int apex_at = -1;
    int found = apex_binding(get, q, &value, &apex_at);
    if (found == STORE_EMPTY)
        Py_RETURN_NONE;
    if (found < 0)
        return NULL;
    PyObject *reply = NULL;
    if (found && (value.bytes[0] & KIND_MASK) != KIND_NODE) {
        reply = Py_None; /* SERVFAIL or deferred: the Python path */
    } else if (found && self->web != Py_None && (q->qtype == TYPE_A || q->qtype == TYPE_AAAA)
               && q->offsets[1] == apex_at && q->qname[0] == 3
               && memcmp(q->qname + 1, "www", 3) == 0) {
        reply = web_reply(self, q, soa_tail);
    } else if (plan != PLAN_BNS_ONLY) {
        reply = Py_None; /* bns-first: upstream is asked (the gateway's FORWARD) */
    } else {
        reply = join_reply(q, RCODE_NXDOMAIN, 0, NULL, 0, soa_tail);
    }
    if (found)
        value_release(&value);
    if (reply == Py_None)
        Py_INCREF(reply);
    return reply;
}

static PyObject *answer_found(NativeAnswerer *self, const Query *q, const Value *value, int plan, PyObject *soa_tail)
{
    if ((value->bytes[0] & KIND_MASK) != KIND_NODE)
        Py_RETURN_NONE;
    if (self->web != Py_None && (q->qtype == TYPE_A || q->qtype == TYPE_AAAA) && (value->bytes[0] & FLAG_WEB))
        return web_reply(self, q, soa_tail);
    Entry entry = {0, 0, NULL, 0};
    if (!find_entry(value, q->qtype, &entry))
        Py_RETURN_NONE; /* a malformed entry: the Python path reports it */
    if (entry.rcode == RCODE_NXDOMAIN && plan != PLAN_BNS_ONLY)
        Py_RETURN_NONE;
    return join_reply(q, entry.rcode, entry.ancount, entry.section, entry.section_length, soa_tail);
}

static PyObject *answer_query(NativeAnswerer *self, const Query *q)
{
    if (q->labels < 2)
        Py_RETURN_NONE; /* the root or a namespace apex: the slow path's own rules */
    if (q->qname_length == (Py_ssize_t)sizeof(CANARY) && memcmp(q->qname, CANARY, sizeof(CANARY)) == 0)
        Py_RETURN_NONE;
    PyObject *get = PyObject_GetAttr(self->owner, str_get);
    if (get == NULL)
        return NULL;
    PyObject *reply = NULL;
    int plan = 0;
    PyObject *soa_tail = NULL;
    int planned = get == Py_None ? 0 : namespace_plan(self, q, &plan, &soa_tail);
    if (planned <= 0) {
        Py_DECREF(get);
        if (planned < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    Value value;
    int found = store_get(get, q, 0, &value);
    if (found > 0) {
        reply = answer_found(self, q, &value, plan, soa_tail);
        value_release(&value);
    } else if (found == 0) {
        reply = answer_missing(self, get, q, plan, soa_tail);
    } else if (found == STORE_EMPTY) {
        reply = Py_None;
        Py_INCREF(reply);
    }
    Py_DECREF(soa_tail);
    Py_DECREF(get);
    return reply; /* counted in `answered` once the caller remembers it */
}

static int initialised(NativeAnswerer *self)
{
    if (self->owner == NULL || self->entries == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "NativeAnswerer used before a successful __init__");
        return 0;
    }
    return 1;
}

static PyObject *NativeAnswerer_answer(NativeAnswerer *self, PyObject *packet)
{
    if (!initialised(self))
        return NULL;
    if (!PyBytes_Check(packet)) {
        PyErr_SetString(PyExc_TypeError, "answer() takes the query's bytes");
        return NULL;
    }
    Query q;
    if (!parse_query((const unsigned char *)PyBytes_AS_STRING(packet), PyBytes_GET_SIZE(packet), &q))
        Py_RETURN_NONE;
    PyObject *reply = answer_query(self, &q);
    if (reply != NULL && reply != Py_None) {
        PyObject *key = PyBytes_FromStringAndSize(PyBytes_AS_STRING(packet) + 2, PyBytes_GET_SIZE(packet) - 2);
        if (key == NULL || remember(self, key, reply) < 0)
            Py_CLEAR(reply);
        Py_XDECREF(key);
    }
    return reply;
}

#ifdef HAVE_READER
/* The UDP reader's loop (server.FastUdpServer.doRead) for what it settles alone. */

#define READ_BATCH 32          /* datagrams per recvmmsg */
#define DATAGRAM_MAX 65536     /* what recvfrom(65535) would take whole */

typedef struct {
    struct mmsghdr in[READ_BATCH];
    struct iovec in_iov[READ_BATCH];
    struct sockaddr_storage from[READ_BATCH];
    struct mmsghdr out[READ_BATCH];
    struct iovec out_iov[READ_BATCH];
    PyObject *replies[READ_BATCH];
    unsigned char data[READ_BATCH][DATAGRAM_MAX];
} Buffers;

/* The client's address as socket.recvfrom gives it: (host, port) or (host, port, flowinfo, scope_id). */
static PyObject *client_host(const struct sockaddr_storage *from)
{
    /* inet_ntop, as CPython's makesockaddr: an IPv6 zone is not in the text (scope_id carries it). */
    char text[INET6_ADDRSTRLEN];
    const void *address;
    if (from->ss_family == AF_INET)
        address = &((const struct sockaddr_in *)from)->sin_addr;
    else if (from->ss_family == AF_INET6)
        address = &((const struct sockaddr_in6 *)from)->sin6_addr;
    else
        return PyErr_Format(PyExc_OSError, "a client address of family %d", (int)from->ss_family);
    if (inet_ntop(from->ss_family, address, text, sizeof(text)) == NULL)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyUnicode_FromString(text);
}

static PyObject *client_address(const struct sockaddr_storage *from, PyObject *host)
{
    if (from->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)from;
        return Py_BuildValue("OiII", host, ntohs(in6->sin6_port), ntohl(in6->sin6_flowinfo), in6->sin6_scope_id);
    }
    return Py_BuildValue("Oi", host, ntohs(((const struct sockaddr_in *)from)->sin_port));
}

/* Give a datagram back to Python: (data, address, the reply awaiting rate limiting or None). */
static int hand_back(PyObject *handed, const unsigned char *data, Py_ssize_t length,
                     const struct sockaddr_storage *from, PyObject *host, PyObject *reply)
{
    PyObject *packet = PyBytes_FromStringAndSize((const char *)data, length);
    PyObject *address = packet ? client_address(from, host) : NULL;
    PyObject *item = address ? PyTuple_Pack(3, packet, address, reply ? reply : Py_None) : NULL;
    int result = item ? PyList_Append(handed, item) : -1;
    Py_XDECREF(item);
    Py_XDECREF(address);
    Py_XDECREF(packet);
    return result;
}

/* The reply to one allowed datagram from the replay table or the store; NULL when Python decides. */
static PyObject *settle(NativeAnswerer *self, const unsigned char *data, Py_ssize_t length, double now)
{
    if (length < HEADER_LEN)
        return NULL;
    PyObject *key = PyBytes_FromStringAndSize((const char *)data + 2, length - 2);
    if (key == NULL)
        return NULL;
    PyObject *reply = NULL;
    PyObject *entry = PyDict_GetItemWithError(self->entries, key); /* borrowed */
    if (entry != NULL && PyTuple_Check(entry) && PyTuple_GET_SIZE(entry) == 2
        && PyBytes_Check(PyTuple_GET_ITEM(entry, 0)) && PyFloat_Check(PyTuple_GET_ITEM(entry, 1))
        && PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(entry, 1)) > now) {
        PyObject *answer = PyTuple_GET_ITEM(entry, 0);
        reply = PyBytes_FromStringAndSize(NULL, 2 + PyBytes_GET_SIZE(answer));
        if (reply != NULL) {
            memcpy(PyBytes_AS_STRING(reply), data, 2);
            memcpy(PyBytes_AS_STRING(reply) + 2, PyBytes_AS_STRING(answer), PyBytes_GET_SIZE(answer));
        }
    } else if (!PyErr_Occurred()) {
        Query q;
        if (parse_query(data, length, &q)) {
            reply = answer_query(self, &q);
            if (reply == Py_None)
                Py_CLEAR(reply);
            else if (reply != NULL && remember(self, key, reply) < 0)
                Py_CLEAR(reply);
        }
    }
    Py_DECREF(key);
    /* An Exception is this datagram's failure: Python's path meets it again and reports it. Anything
     * else (KeyboardInterrupt, SystemExit from a signal handler) stays set for read() to raise. */
    if (PyErr_Occurred() && PyErr_ExceptionMatches(PyExc_Exception))
        PyErr_Clear();
    return reply;
}

static void send_replies(int fd, Buffers *b, int count)
{
    int sent = 0;
    while (sent < count) {
        int done = sendmmsg(fd, b->out + sent, count - sent, MSG_DONTWAIT);
        if (done < 0 && errno == EINTR)
            continue;
        /* A failed send (a full buffer, an unreachable client) drops that reply, as UDP may. */
        sent += done > 0 ? done : 1;
    }
    for (int i = 0; i < count; i++)
        Py_CLEAR(b->replies[i]);
}

static PyObject *NativeAnswerer_read(NativeAnswerer *self, PyObject *args)
{
    int fd, budget;
    PyObject *decided, *buckets;
    double now;
    if (!initialised(self) || !PyArg_ParseTuple(args, "iO!Odi", &fd, &PyDict_Type, &decided, &buckets, &now, &budget))
        return NULL;
    if (buckets != Py_None && !PyDict_Check(buckets)) {
        PyErr_SetString(PyExc_TypeError, "buckets is a dict or None");
        return NULL;
    }
    if (self->buffers == NULL && (self->buffers = PyMem_RawCalloc(1, sizeof(Buffers))) == NULL)
        return PyErr_NoMemory();
    Buffers *b = self->buffers;
    PyObject *handed = PyList_New(0);
    if (handed == NULL)
        return NULL;
    unsigned long long before = self->answered;
    while (budget > 0) {
        int want = budget < READ_BATCH ? budget : READ_BATCH;
        for (int i = 0; i < want; i++) {
            b->in_iov[i].iov_base = b->data[i];
            b->in_iov[i].iov_len = DATAGRAM_MAX;
            memset(&b->in[i].msg_hdr, 0, sizeof(struct msghdr));
            b->in[i].msg_hdr.msg_iov = &b->in_iov[i];
            b->in[i].msg_hdr.msg_iovlen = 1;
            b->in[i].msg_hdr.msg_name = &b->from[i];
            b->in[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        }
        int got = recvmmsg(fd, b->in, want, MSG_DONTWAIT, NULL);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            budget--; /* e.g. an ICMP error queued on the socket: read on */
            continue;
        }
        if (got == 0)
            break;
        budget -= got;
        int queued = 0;
        for (int i = 0; i < got; i++) {
            const unsigned char *data = b->data[i];
            Py_ssize_t length = b->in[i].msg_len;
            PyObject *host = client_host(&b->from[i]);
            if (host == NULL) {
                PyErr_Clear(); /* not an address socket.recvfrom would give either: drop the datagram */
                continue;
            }
            PyObject *allowed = PyDict_GetItemWithError(decided, host); /* borrowed */
            PyErr_Clear(); /* a failed lookup in `decided` (a str key cannot fail): as not decided */
            PyObject *reply = allowed == Py_True ? settle(self, data, length, now) : NULL;
            if (PyErr_Occurred()) {
                Py_XDECREF(reply);
                Py_DECREF(host);
                goto failed;
            }
            int limited = 0;
            if (reply != NULL && buckets != Py_None) {
                PyObject *bucket = PyDict_GetItemWithError(buckets, host);
                PyErr_Clear();
                limited = bucket != Py_None; /* a limited prefix, or one not placed yet: Python's RRL */
            }
            if (reply == NULL || limited) {
                int result = hand_back(handed, data, length, &b->from[i], host, reply);
                Py_XDECREF(reply);
                Py_DECREF(host);
                if (result < 0)
                    goto failed;
                continue;
            }
            Py_DECREF(host);
            b->replies[queued] = reply;
            b->out_iov[queued].iov_base = PyBytes_AS_STRING(reply);
            b->out_iov[queued].iov_len = PyBytes_GET_SIZE(reply);
            memset(&b->out[queued].msg_hdr, 0, sizeof(struct msghdr));
            b->out[queued].msg_hdr.msg_iov = &b->out_iov[queued];
            b->out[queued].msg_hdr.msg_iovlen = 1;
            b->out[queued].msg_hdr.msg_name = &b->from[i];
            b->out[queued].msg_hdr.msg_namelen = b->in[i].msg_hdr.msg_namelen;
            queued++;
        }
        send_replies(fd, b, queued);
        continue;
    failed:
        send_replies(fd, b, queued);
        Py_DECREF(handed);
        return NULL;
    }
    return Py_BuildValue("(NK)", handed, self->answered - before);
}
#endif

static int NativeAnswerer_init(NativeAnswerer *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"owner", "plans", "plan_for", "forwarded", "web", "replay", NULL};
    PyObject *owner, *plans, *plan_for, *forwarded, *web, *replay;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!OOOO", keywords, &owner, &PyDict_Type, &plans, &plan_for,
                                     &forwarded, &web, &replay))
        return -1;
    /* Everything checked before anything is kept: a failed init leaves the object as it was. */
    if (web != Py_None && !(PyTuple_Check(web) && PyTuple_GET_SIZE(web) == 2 && PyLong_Check(PyTuple_GET_ITEM(web, 0))
                            && PyBytes_Check(PyTuple_GET_ITEM(web, 1)))) {
        PyErr_SetString(PyExc_TypeError, "web is None or (family, record bytes)");
        return -1;
    }
    PyObject *entries = PyObject_GetAttrString(replay, "entries");
    PyObject *max_entries = entries ? PyObject_GetAttrString(replay, "max_entries") : NULL;
    Py_ssize_t max = max_entries ? PyLong_AsSsize_t(max_entries) : -1;
    Py_XDECREF(max_entries);
    if (entries == NULL || max < 0 || !PyDict_Check(entries)) {
        Py_XDECREF(entries);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "replay is a ReplayCache (an `entries` dict and `max_entries`)");
        return -1;
    }
    self->max_entries = max;
    Py_INCREF(replay);
    Py_XSETREF(self->replay, replay);
    Py_XSETREF(self->entries, entries);
    Py_INCREF(owner);
    Py_INCREF(plans);
    Py_INCREF(plan_for);
    Py_INCREF(forwarded);
    Py_INCREF(web);
    Py_XSETREF(self->owner, owner);
    Py_XSETREF(self->plans, plans);
    Py_XSETREF(self->plan_for, plan_for);
    Py_XSETREF(self->forwarded, forwarded);
    Py_XSETREF(self->web, web);
    return 0;
}

static int NativeAnswerer_traverse(NativeAnswerer *self, visitproc visit, void *arg)
{
    Py_VISIT(self->owner);
    Py_VISIT(self->plans);
    Py_VISIT(self->plan_for);
    Py_VISIT(self->forwarded);
    Py_VISIT(self->web);
    Py_VISIT(self->replay);
    Py_VISIT(self->entries);
    return 0;
}

static int NativeAnswerer_clear(NativeAnswerer *self)
{
    Py_CLEAR(self->owner);
    Py_CLEAR(self->plans);
    Py_CLEAR(self->plan_for);
    Py_CLEAR(self->forwarded);
    Py_CLEAR(self->web);
    Py_CLEAR(self->replay);
    Py_CLEAR(self->entries);
    return 0;
}

static void NativeAnswerer_dealloc(NativeAnswerer *self)
{
    PyObject_GC_UnTrack(self);
    NativeAnswerer_clear(self);
    PyMem_RawFree(self->buffers);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *NativeAnswerer_get_answered(NativeAnswerer *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->answered);
}

static PyMethodDef NativeAnswerer_methods[] = {
    {"answer", (PyCFunction)NativeAnswerer_answer, METH_O,
     "answer(packet) -> the reply's bytes (remembered in the replay table), or None when the Python path decides"},
#ifdef HAVE_READER
    {"read", (PyCFunction)NativeAnswerer_read, METH_VARARGS,
     "read(fd, decided, buckets, now, budget) -> (handed back, replies joined): reads up to `budget` datagrams, "
     "sends what the replay table and the store answer for allowed, unlimited clients, and hands the rest back "
     "as (data, address, reply awaiting rate limiting or None)"},
#endif
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef NativeAnswerer_getset[] = {
    {"answered", (getter)NativeAnswerer_get_answered, NULL, "replies joined so far", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject NativeAnswererType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bns_resolver.answers._native.NativeAnswerer",
    .tp_basicsize = sizeof(NativeAnswerer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The compiled store's UDP answers for plain queries, joined in C.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)NativeAnswerer_init,
    .tp_dealloc = (destructor)NativeAnswerer_dealloc,
    .tp_traverse = (traverseproc)NativeAnswerer_traverse,
    .tp_clear = (inquiry)NativeAnswerer_clear,
    .tp_methods = NativeAnswerer_methods,
    .tp_getset = NativeAnswerer_getset,
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_native", "The UDP fast path's store answers in C.", -1, NULL,
};

PyMODINIT_FUNC PyInit__native(void)
{
    str_get = PyUnicode_InternFromString("_get");
    str_namespaces = PyUnicode_InternFromString("namespaces");
    str_make_room = PyUnicode_InternFromString("make_room");
    forever = PyFloat_FromDouble(Py_HUGE_VAL);
    if (str_get == NULL || str_namespaces == NULL || str_make_room == NULL || forever == NULL || PyType_Ready(&NativeAnswererType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&native_module);
    if (module == NULL)
        return NULL;
    Py_INCREF(&NativeAnswererType);
    if (PyModule_AddObject(module, "NativeAnswerer", (PyObject *)&NativeAnswererType) < 0) {
        Py_DECREF(&NativeAnswererType);
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddIntConstant(module, "PLAN_BNS_FIRST", PLAN_BNS_FIRST) < 0
        || PyModule_AddIntConstant(module, "PLAN_BNS_ONLY", PLAN_BNS_ONLY) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
