#!/usr/bin/python3
"""Real WebSocket peers (Debian's python3-websockets) for the tunnel tests.

  websocket_peer.py server
      Echo server on 127.0.0.1, port chosen by the kernel. Prints "listening on 127.0.0.1:PORT",
      then "handshake PATH" for every opening handshake it receives (so the test counts how often
      bulwark sent one). /refuse answers 503 instead of switching; /slow answers after 300 ms.

  websocket_peer.py client URL COUNT [PAUSE_AT]
      Sends COUNT messages (text and binary, 1 byte to 1 MiB) while a second task reads the echoes
      and checks each one, in order, byte for byte. With PAUSE_AT it prints "echoed PAUSE_AT" once
      that many echoes are back and waits for SIGUSR1 before sending the rest. Ends with a clean
      close handshake and prints "done COUNT"; any mismatch or error exits non-zero.

  websocket_peer.py idle URL
      Sends one message, reads its echo, then sends nothing and prints "closed by peer CODE" when
      the other side ends the connection.
"""

import asyncio
import http
import signal
import sys

import websockets
import websockets.exceptions


_PATTERN = bytes(range(256)) * 4200


def message(i):
    # Mostly small frames, some of 64 KiB, and every 500th 1 MiB: big enough to fill bulwark's
    # write buffers so reading pauses and resumes on both connections.
    if i % 500 == 499:
        return _PATTERN[i % 251:i % 251 + (1 << 20)]
    if i % 50 == 7:
        return _PATTERN[i % 199:i % 199 + 64 * 1024]
    if i % 2 == 0:
        return "message %d %s" % (i, "x" * (i % 97))
    return bytes([i % 256]) * (1 + i % 1500)


async def echo(websocket, path=None):
    async for data in websocket:
        await websocket.send(data)


async def serve():
    async def process_request(path, headers):
        print("handshake %s" % path, flush=True)
        if path == "/refuse":
            return (http.HTTPStatus.SERVICE_UNAVAILABLE, [("content-type", "text/plain")],
                    b"not now\n")
        if path == "/slow":
            await asyncio.sleep(0.3)
        return None

    async with websockets.serve(echo, "127.0.0.1", 0, process_request=process_request,
                                max_size=None, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        print("listening on 127.0.0.1:%d" % port, flush=True)
        await asyncio.Future()


async def client(url, count, pause_at):
    resume = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, resume.set)
    echoed = 0
    reached_pause = asyncio.Event()
    async with websockets.connect(url, max_size=None, compression=None,
                                  open_timeout=10) as ws:
        async def receive():
            nonlocal echoed
            for i in range(count):
                got = await ws.recv()
                if got != message(i):
                    raise SystemExit("echo %d differs from what was sent" % i)
                echoed += 1
                if echoed == pause_at:
                    reached_pause.set()

        async def send():
            for i in range(count):
                if pause_at and i == pause_at:
                    await reached_pause.wait()
                    print("echoed %d" % pause_at, flush=True)
                    await resume.wait()
                await ws.send(message(i))

        await asyncio.gather(receive(), send())
    print("done %d" % echoed, flush=True)


async def idle(url):
    async with websockets.connect(url, open_timeout=10, ping_interval=None) as ws:
        await ws.send("hello")
        if await ws.recv() != "hello":
            raise SystemExit("bad echo")
        print("echoed 1", flush=True)
        try:
            await ws.recv()
        except websockets.exceptions.ConnectionClosed as closed:
            print("closed by peer %s" % closed.code, flush=True)


def main():
    mode = sys.argv[1]
    if mode == "server":
        asyncio.run(serve())
    elif mode == "client":
        pause_at = int(sys.argv[4]) if len(sys.argv) > 4 else 0
        asyncio.run(client(sys.argv[2], int(sys.argv[3]), pause_at))
    elif mode == "idle":
        asyncio.run(idle(sys.argv[2]))
    else:
        raise SystemExit("unknown mode %s" % mode)


if __name__ == "__main__":
    main()
