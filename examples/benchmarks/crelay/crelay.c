// crelay: the smallest SOCKS 5 relay we could write in C, as a floor for the
// benchmarks in examples/benchmarks. One thread, one epoll set (edge
// triggered), small chunks read and written, bulk moved with splice(2)
// through a pipe. No authentication, CONNECT to IPv4 and IPv6 literals only,
// no limits, no logs, no metrics, no deadlines. It shows what a relay costs on
// this machine when it does nothing but relay: it is a benchmark fixture,
// never part of the gateway, and must never listen beyond loopback.
//
//	cc -O2 -o crelay crelay.c && ./crelay 127.0.0.1 1080 [pipe-bytes]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { GREETING, REQUEST, CONNECTING, RELAYING };

// A direction moves bytes from src to dst: through buf while chunks are
// small, through a pipe after the first read that fills buf.
struct dir {
	int src, dst;
	int pipe[2];        // -1 until the direction switches to splice
	size_t pending;     // bytes in the pipe
	char buf[16384];
	size_t off, len;    // unwritten part of buf
	int eof;
};

struct end {
	struct sess *s;
	int fd;
};

struct sess {
	int state;
	struct end client, target;
	struct dir d[2]; // 0: client to target, 1: target to client
	unsigned char req[262];
	size_t n;
	int out_armed[2]; // EPOLLOUT added for client (0) and target (1)
	struct sess *next_free;
};

static int ep;
static int pipe_size = 1 << 20;
static struct sess *freed; // closed this round; freed after the round

static void watch(int op, struct end *e, unsigned extra) {
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET | extra, .data.ptr = e};
	epoll_ctl(ep, op, e->fd, &ev);
}

static void finish(struct sess *s) {
	if (s->state < 0)
		return;
	for (int i = 0; i < 2; i++)
		if (s->d[i].pipe[0] >= 0) {
			close(s->d[i].pipe[0]);
			close(s->d[i].pipe[1]);
		}
	close(s->client.fd);
	if (s->target.fd >= 0)
		close(s->target.fd);
	s->state = -1;
	s->next_free = freed;
	freed = s;
}

// wait_writable asks for EPOLLOUT on a direction's destination, once.
static void wait_writable(struct sess *s, struct dir *d) {
	int t = d->dst == s->target.fd;
	if (s->out_armed[t])
		return;
	s->out_armed[t] = 1;
	watch(EPOLL_CTL_MOD, t ? &s->target : &s->client, EPOLLOUT);
}

static void got_eof(struct sess *s, struct dir *d) {
	d->eof = 1;
	// The last direction to end leaves the FIN to close(2).
	if (!(s->d[0].eof && s->d[1].eof))
		shutdown(d->dst, SHUT_WR);
}

// flush writes what buf holds: 1 once all of it is written, 0 when dst is
// full (EPOLLOUT is then asked for), -1 on error.
static int flush(struct sess *s, struct dir *d) {
	while (d->off < d->len) {
		ssize_t w = write(d->dst, d->buf + d->off, d->len - d->off);
		if (w < 0) {
			if (errno == EAGAIN) {
				wait_writable(s, d);
				return 0;
			}
			return -1;
		}
		d->off += w;
	}
	return 1;
}

// pump moves what it can; 0 when it must wait for an event, -1 on error.
static int pump(struct sess *s, struct dir *d) {
	while (d->pipe[0] < 0) {
		int f = flush(s, d);
		if (f <= 0)
			return f;
		if (d->eof)
			return 0;
		if (d->len == sizeof d->buf) { // the last read filled buf: splice from now on
			if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0)
				return -1;
			fcntl(d->pipe[0], F_SETPIPE_SZ, pipe_size);
			break;
		}
		ssize_t r = read(d->src, d->buf, sizeof d->buf);
		if (r == 0) {
			got_eof(s, d);
			return 0;
		}
		if (r < 0)
			return errno == EAGAIN ? 0 : -1;
		d->off = 0;
		d->len = r;
		if ((size_t)r < sizeof d->buf) // drained: write and wait for the next edge
			return flush(s, d) < 0 ? -1 : 0;
	}
	for (;;) {
		if (d->pending > 0) {
			ssize_t w = splice(d->pipe[0], NULL, d->dst, NULL, d->pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (w < 0) {
				if (errno == EAGAIN) {
					wait_writable(s, d);
					return 0;
				}
				return -1;
			}
			d->pending -= w;
			continue;
		}
		if (d->eof)
			return 0;
		ssize_t r = splice(d->src, NULL, d->pipe[1], NULL, pipe_size, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (r == 0) {
			got_eof(s, d);
			return 0;
		}
		if (r < 0)
			return errno == EAGAIN ? 0 : -1;
		d->pending = r;
		if (r < 65536) { // drained: flush and wait for the next edge
			ssize_t w = splice(d->pipe[0], NULL, d->dst, NULL, d->pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (w < 0 && errno != EAGAIN)
				return -1;
			if (w > 0)
				d->pending -= w;
			if (d->pending > 0)
				wait_writable(s, d);
			return 0;
		}
	}
}

static void relay(struct sess *s, int fd, unsigned ev) {
	for (int i = 0; i < 2 && s->state == RELAYING; i++) {
		struct dir *d = &s->d[i];
		int readable = (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && d->src == fd;
		int writable = (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && d->dst == fd && (d->pending || d->off < d->len);
		if ((readable || writable) && pump(s, d) < 0)
			finish(s);
	}
	if (s->state == RELAYING && s->d[0].eof && s->d[1].eof && !s->d[0].pending && !s->d[1].pending &&
	    s->d[0].off == s->d[0].len && s->d[1].off == s->d[1].len)
		finish(s);
}

static void reply(struct sess *s, unsigned char code) {
	unsigned char r[10] = {5, code, 0, 1};
	(void)!write(s->client.fd, r, sizeof r);
}

// request reads the greeting and the CONNECT request, then starts the dial.
static void request(struct sess *s) {
	for (;;) {
		ssize_t r = read(s->client.fd, s->req + s->n, sizeof s->req - s->n);
		if (r == 0 || (r < 0 && errno != EAGAIN)) {
			finish(s);
			return;
		}
		if (r < 0)
			return;
		s->n += r;
		// A read that did not fill the buffer drained the socket: with edge
		// triggering, wait for the next edge rather than read EAGAIN.
		int drained = (size_t)r < sizeof s->req - (s->n - r);
		if (s->state == GREETING) {
			if (s->n < 2 || s->n < 2u + s->req[1]) {
				if (drained)
					return;
				continue;
			}
			if (s->req[0] != 5 || !memchr(s->req + 2, 0, s->req[1])) {
				(void)!write(s->client.fd, "\x05\xff", 2);
				finish(s);
				return;
			}
			size_t g = 2 + s->req[1];
			(void)!write(s->client.fd, "\x05\x00", 2);
			memmove(s->req, s->req + g, s->n - g);
			s->n -= g;
			s->state = REQUEST;
		}
		size_t need = s->n < 4 ? 4 : s->req[3] == 1 ? 10 : s->req[3] == 4 ? 22 : 0;
		if (need == 0) {
			reply(s, 8); // address type not supported
			finish(s);
			return;
		}
		if (s->n < need) {
			if (drained)
				return;
			continue;
		}
		if (s->req[0] != 5 || s->req[1] != 1) {
			reply(s, 7); // command not supported
			finish(s);
			return;
		}
		struct sockaddr_storage ss = {0};
		socklen_t sl;
		if (s->req[3] == 1) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			a->sin_family = AF_INET;
			memcpy(&a->sin_addr, s->req + 4, 4);
			memcpy(&a->sin_port, s->req + 8, 2);
			sl = sizeof *a;
		} else {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			a->sin6_family = AF_INET6;
			memcpy(&a->sin6_addr, s->req + 4, 16);
			memcpy(&a->sin6_port, s->req + 20, 2);
			sl = sizeof *a;
		}
		// Bytes after the request (the client's first data) wait in the
		// client socket's buffer: nothing more is read until the dial ends.
		int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 || (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)) {
			if (fd >= 0)
				close(fd);
			reply(s, errno == ECONNREFUSED ? 5 : errno == ENETUNREACH ? 3 : 1);
			finish(s);
			return;
		}
		s->target.fd = fd;
		s->state = CONNECTING;
		watch(EPOLL_CTL_ADD, &s->target, EPOLLOUT);
		s->out_armed[1] = 1;
		return;
	}
}

static void connected(struct sess *s) {
	int err = 0;
	socklen_t el = sizeof err;
	getsockopt(s->target.fd, SOL_SOCKET, SO_ERROR, &err, &el);
	if (err) {
		reply(s, err == ECONNREFUSED ? 5 : 1);
		finish(s);
		return;
	}
	reply(s, 0);
	s->state = RELAYING;
	s->d[0].src = s->client.fd, s->d[0].dst = s->target.fd;
	s->d[1].src = s->target.fd, s->d[1].dst = s->client.fd;
	relay(s, s->client.fd, EPOLLIN); // what the client sent meanwhile
	if (s->state == RELAYING)
		relay(s, s->target.fd, EPOLLIN);
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: crelay ADDRESS PORT [PIPE-BYTES]\n");
		return 2;
	}
	if (argc > 3)
		pipe_size = atoi(argv[3]);
	signal(SIGPIPE, SIG_IGN); // a peer that went away is an error return, not the end

	struct sockaddr_storage ss = {0};
	socklen_t sl;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, argv[1], &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET, a4->sin_port = htons(atoi(argv[2])), sl = sizeof *a4;
	} else if (inet_pton(AF_INET6, argv[1], &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6, a6->sin6_port = htons(atoi(argv[2])), sl = sizeof *a6;
	} else {
		fprintf(stderr, "crelay: %s is not an IP address\n", argv[1]);
		return 2;
	}
	int l = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(l, (struct sockaddr *)&ss, sl) < 0 || listen(l, 4096) < 0) {
		perror("crelay: listen");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct end listener = {NULL, l};
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &listener};
	epoll_ctl(ep, EPOLL_CTL_ADD, l, &lev);
	fprintf(stderr, "crelay listening on %s port %s\n", argv[1], argv[2]);
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		if (n < 0 && errno != EINTR) {
			perror("crelay: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct end *e = evs[i].data.ptr;
			if (e == &listener) {
				for (;;) {
					int c = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (c < 0)
						break;
					struct sess *s = calloc(1, sizeof *s);
					if (!s) {
						close(c);
						continue;
					}
					s->client = (struct end){s, c};
					s->target = (struct end){s, -1};
					for (int k = 0; k < 2; k++)
						s->d[k].pipe[0] = s->d[k].pipe[1] = -1;
					watch(EPOLL_CTL_ADD, &s->client, 0);
					request(s);
				}
				continue;
			}
			struct sess *s = e->s;
			unsigned ev = evs[i].events;
			switch (s->state) {
			case GREETING:
			case REQUEST:
				if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
					request(s);
				break;
			case CONNECTING:
				if (e == &s->target && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
					connected(s);
				break;
			case RELAYING:
				relay(s, e->fd, ev);
				break;
			}
		}
		while (freed) {
			struct sess *s = freed;
			freed = s->next_free;
			free(s);
		}
	}
}
