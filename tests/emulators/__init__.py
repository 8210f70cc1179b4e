"""The Slack and Heroku emulators held to the official contracts and to the real Heroku CLI."""
