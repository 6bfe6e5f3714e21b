import("./site.css");new URL("../img/logo.png", import.meta.url);const u=`${base}/img/logo.png`;fetch("/api/ping");//# sourceMappingURL=app.js.map
