// An Express app as any Express app is written (fastfn --format server gives it PORT and HOST).
const express = require("express");

const app = express();

app.get("/", (req, res) => {
  const name = req.query.name || "world";
  res.type("text/plain; charset=utf-8").send(`hello ${name} from pid ${process.pid}\n`);
});

app.post("/", express.raw({ type: () => true, limit: "10mb" }), (req, res) => {
  res.type("application/octet-stream").send(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
});

app.listen(Number(process.env.PORT || 3000), process.env.HOST || "127.0.0.1");
