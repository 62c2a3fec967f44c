"""asyncio (epoll underneath) echo server or client.

server PORT: echoes every connection until EOF, on every address (one
IPv4 and one IPv6-only socket, as asyncio does).
client HOST PORT N SIZE: N concurrent connections each send SIZE seeded
bytes and check the echo; prints "N ok"."""
import asyncio
import random
import sys


async def echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def server(port):
    srv = await asyncio.start_server(echo, None, port)
    async with srv:
        await srv.serve_forever()


async def one(host, port, i, size):
    data = random.Random(i).randbytes(size)
    reader, writer = await asyncio.open_connection(host, port)

    async def send():
        writer.write(data)
        await writer.drain()
        writer.write_eof()

    sender = asyncio.create_task(send())
    got = await reader.read(-1)
    await sender
    writer.close()
    assert got == data, (i, len(got), size)


async def client(host, port, n, size):
    await asyncio.wait_for(
        asyncio.gather(*(one(host, port, i, size) for i in range(n))), 60
    )
    print(n, "ok", flush=True)


if sys.argv[1] == "server":
    asyncio.run(server(int(sys.argv[2])))
else:
    asyncio.run(client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])))
